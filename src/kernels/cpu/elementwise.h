// Elementwise and row-wise CPU kernels on contiguous float32 buffers. Backward kernels accumulate
// (+=) into the input gradient, so several consumers of one value add up.
#pragma once

#include <cstdint>

namespace tfm::kernels {

void add(const float* a, const float* b, float* out, int64_t n);
void accumulate(float* acc, const float* x, int64_t n);                  // acc += x
void accumulate_scaled(float* acc, const float* x, float s, int64_t n);  // acc += s * x
void scale(const float* x, float s, float* out, int64_t n);

// out[r, c] = x[r, c] + row[(r % period), c]: adds a [period, cols] table to every block of rows
// (positions added to a [batch, time, d] tensor: period = time).
void add_rows_periodic(const float* x, const float* table, float* out, int64_t rows, int64_t cols,
                       int64_t period);

void bias_add(float* y, const float* bias, int64_t rows, int64_t cols);     // y[r, :] += bias
void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols);  // dbias += sum_r dy[r, :]

void relu_forward(const float* x, float* y, int64_t n);
void relu_backward(const float* y, const float* dy, float* dx, int64_t n);  // dx += dy * (y > 0)

// Inverted dropout: y = x * keep / (1 - p), keep = uniform(seed, offset + i) >= p.
void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset);
void dropout_backward(const float* dy, float* dx, int64_t n, float p, uint64_t seed, uint64_t offset);

}  // namespace tfm::kernels
