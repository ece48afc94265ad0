// Vectorised exponentials for the softmax-shaped loops (attention, cross-entropy). libm's expf is called
// once per element and does not vectorise without -ffast-math; these evaluate 16 lanes at a time with
// AVX-512 (scalar std::exp on other builds). Accuracy within 2 ulp of the exact value on the range that
// matters here (x <= 0 after the shift); exp of anything below -103 is exactly 0, NaN stays NaN.
#pragma once

#include <cstdint>

namespace tfm::kernels {

// y[i] = exp(x[i] - shift) for n elements (y may be x); returns the sum of the y, in float.
float exp_shifted(const float* x, float shift, float* y, int64_t n);

// The sum of exp(x[i] - shift), accumulated in double; nothing stored.
double sum_exp_shifted(const float* x, float shift, int64_t n);

}  // namespace tfm::kernels
