#include "kernels/cpu/linear_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/attention_layout.h"
#include "kernels/cpu/vector_math.h"

namespace tfm::kernels {

namespace {

using namespace detail;

// phi(x) = elu(x) + 1 of n values, and phi'(x) when `slope` is given. exp(min(x, 0)) goes through the
// vectorised exponential (into phi first).
void feature_map(const float* x, int64_t n, float* phi, float* slope = nullptr) {
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) phi[e] = std::min(x[e], 0.0f);
  exp_shifted(phi, 0.0f, phi, n);
  if (slope) {
#pragma omp simd
    for (int64_t e = 0; e < n; ++e) slope[e] = x[e] > 0 ? 1.0f : phi[e];
  }
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) phi[e] = x[e] > 0 ? x[e] + 1.0f : phi[e];
}

// The last key query i sees (keys 0 .. limit, the padding among them left out).
int64_t key_limit(const AttentionDims& d, const AttentionMask& mask, int64_t i) {
  return mask.causal ? std::min(i + mask.query_offset, d.k_len - 1) : d.k_len - 1;
}

void check_mask(const AttentionMask& mask) {
  TFM_CHECK(mask.window == 0 && mask.global == 0,
            "linear attention has no sliding window ({}) or global tokens ({})", mask.window, mask.global);
}

// One head's sums: S [n, n] with rows `ld` floats apart and z [n].
struct StateView {
  float* S;
  int64_t ld;
  float* z;
  int64_t n;
  // S += f b^T, z += f * w (w: 1 for keys; dden for the backward's r).
  void add(const float* f, const float* b, float w) const {
    for (int64_t a = 0; a < n; ++a) {
      float* row = S + a * ld;
      const float fa = f[a];
#pragma omp simd
      for (int64_t e = 0; e < n; ++e) row[e] += fa * b[e];
      z[a] += fa * w;
    }
  }
  // A query's num = S^T fq (into `num`); returns den = fq . z.
  float query(const float* fq, float* num) const {
    std::fill_n(num, n, 0.0f);
    float den = 0;
    for (int64_t a = 0; a < n; ++a) {
      const float* row = S + a * ld;
      const float fa = fq[a];
#pragma omp simd
      for (int64_t e = 0; e < n; ++e) num[e] += fa * row[e];
      den += fa * z[a];
    }
    return den;
  }
};

// One head's sweep state, owned, with the scratch rows the sweeps need.
struct HeadState {
  int64_t n;
  std::vector<float> S, z, fx, slope, a;
  explicit HeadState(int64_t head_dim)
      : n(head_dim), S(size_t(n * n)), z(size_t(n)), fx(size_t(n)), slope(size_t(n)), a(size_t(n)) {}
  StateView view() { return {S.data(), n, z.data(), n}; }
  void reset() {
    std::fill(S.begin(), S.end(), 0.0f);
    std::fill(z.begin(), z.end(), 0.0f);
  }
  void add(const float* f, const float* b, float w) { view().add(f, b, w); }
};

// Scales a query's num by 1 / den into out (0 without any key).
void normalise(float* out, int64_t n, float den) {
  const float inv = den > 0 ? 1.0f / den : 0.0f;
  for (int64_t e = 0; e < n; ++e) out[e] *= inv;
}

}  // namespace

void linear_attention_forward(const AttentionDims& d, const AttentionMask& mask, const float* q,
                              const float* k, const float* v, float* out) {
  check_mask(mask);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      const HeadOffsets o = head_offsets(d, b, h);
      const uint8_t* valid = mask.key_valid ? mask.key_valid + b * d.k_len : nullptr;
      HeadState st(d.head_dim);
      st.reset();
      int64_t next_key = 0;
      for (int64_t i = 0; i < d.q_len; ++i) {
        for (const int64_t last = key_limit(d, mask, i); next_key <= last; ++next_key) {
          if (valid && !valid[next_key]) continue;
          feature_map(k + o.k + next_key * d.k_stride, d.head_dim, st.fx.data());
          st.add(st.fx.data(), v + o.v + next_key * d.v_stride, 1.0f);
        }
        feature_map(q + o.q + i * d.q_stride, d.head_dim, st.fx.data());
        float* orow = out + o.q + i * d.q_stride;
        normalise(orow, d.head_dim, st.view().query(st.fx.data(), orow));
      }
    }
}

void linear_attention_recurrent(const AttentionDims& d, const float* q, const float* k, const float* v,
                                float* state, float* z, float* out) {
  const int64_t kv_heads = kv_heads_of(d), group = d.heads / kv_heads, n = d.head_dim, ld = kv_heads * n;
  std::vector<float> f(static_cast<size_t>(n));
  for (int64_t t = 0; t < d.q_len; ++t) {
    for (int64_t g = 0; g < kv_heads; ++g) {
      feature_map(k + t * d.k_stride + g * n, n, f.data());
      StateView{state + g * n, ld, z + g * n, n}.add(f.data(), v + t * d.v_stride + g * n, 1.0f);
    }
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / group;
      feature_map(q + t * d.q_stride + h * n, n, f.data());
      float* orow = out + t * d.q_stride + h * n;
      normalise(orow, n, StateView{state + g * n, ld, z + g * n, n}.query(f.data(), orow));
    }
  }
}

void linear_attention_backward(const AttentionDims& d, const AttentionMask& mask, const float* q,
                               const float* k, const float* v, const float* dout, float* dq, float* dk,
                               float* dv) {
  check_mask(mask);
  const int64_t kv_heads = kv_heads_of(d), group = d.heads / kv_heads, n = d.head_dim;
  // One task per (batch, K/V head): the query heads sharing it run in turn, so dK and dV add up safely.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t g = 0; g < kv_heads; ++g)
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const HeadOffsets o = head_offsets(d, b, h);
        const uint8_t* valid = mask.key_valid ? mask.key_valid + b * d.k_len : nullptr;
        HeadState st(n);
        std::vector<float> dnum(static_cast<size_t>(d.q_len * n)), dden(static_cast<size_t>(d.q_len)),
            num(static_cast<size_t>(n));
        // Forward sweep over the queries: dnum_i, dden_i and d phi(q_i).
        st.reset();
        int64_t next_key = 0;
        for (int64_t i = 0; i < d.q_len; ++i) {
          for (const int64_t last = key_limit(d, mask, i); next_key <= last; ++next_key) {
            if (valid && !valid[next_key]) continue;
            feature_map(k + o.k + next_key * d.k_stride, n, st.fx.data());
            st.add(st.fx.data(), v + o.v + next_key * d.v_stride, 1.0f);
          }
          feature_map(q + o.q + i * d.q_stride, n, st.fx.data(), st.slope.data());
          const float den = st.view().query(st.fx.data(), num.data());
          float* dn = dnum.data() + i * n;
          if (den <= 0) {  // no key: out = 0, no gradient
            std::fill_n(dn, n, 0.0f);
            dden[size_t(i)] = 0;
            continue;
          }
          const float* g_i = dout + o.q + i * d.q_stride;
          float g_dot_out = 0;
#pragma omp simd reduction(+ : g_dot_out)
          for (int64_t e = 0; e < n; ++e) g_dot_out += g_i[e] * num[size_t(e)] / den;
          for (int64_t e = 0; e < n; ++e) dn[e] = g_i[e] / den;
          dden[size_t(i)] = -g_dot_out / den;
          if (!dq) continue;
          float* dq_row = dq + o.q + i * d.q_stride;
          for (int64_t a = 0; a < n; ++a) {  // d phi(q)_a = S[a, :] . dnum + z_a dden
            const float* row = st.S.data() + a * n;
            float s = st.z[size_t(a)] * dden[size_t(i)];
#pragma omp simd reduction(+ : s)
            for (int64_t e = 0; e < n; ++e) s += row[e] * dn[e];
            dq_row[a] += s * st.slope[size_t(a)];
          }
        }
        if (!dk && !dv) continue;
        // Backward sweep over the keys: R and r (st.S, st.z) gather the queries that see key j.
        st.reset();
        int64_t next_query = d.q_len - 1;
        for (int64_t j = d.k_len - 1; j >= 0; --j) {
          for (; next_query >= 0 && key_limit(d, mask, next_query) >= j; --next_query) {
            feature_map(q + o.q + next_query * d.q_stride, n, st.a.data());
            st.add(st.a.data(), dnum.data() + next_query * n, dden[size_t(next_query)]);
          }
          if (valid && !valid[j]) continue;
          feature_map(k + o.k + j * d.k_stride, n, st.fx.data(), st.slope.data());
          const float* vj = v + o.v + j * d.v_stride;
          if (dk) {
            float* dk_row = dk + o.k + j * d.k_stride;
            for (int64_t a = 0; a < n; ++a) {  // d phi(k)_a = R[a, :] . v_j + r_a
              const float* row = st.S.data() + a * n;
              float s = st.z[size_t(a)];
#pragma omp simd reduction(+ : s)
              for (int64_t e = 0; e < n; ++e) s += row[e] * vj[e];
              dk_row[a] += s * st.slope[size_t(a)];
            }
          }
          if (dv) {
            float* dv_row = dv + o.v + j * d.v_stride;
            for (int64_t a = 0; a < n; ++a) {  // dv_j += R^T phi(k_j)
              const float* row = st.S.data() + a * n;
              const float fa = st.fx[size_t(a)];
#pragma omp simd
              for (int64_t e = 0; e < n; ++e) dv_row[e] += fa * row[e];
            }
          }
        }
      }
}

}  // namespace tfm::kernels
