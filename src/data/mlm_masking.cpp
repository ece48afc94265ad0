#include "data/mlm_masking.h"

#include <algorithm>

#include "core/error.h"

namespace tfm::data {

MaskedBatch mask_for_mlm(const Tensor& ids, const MlmMasking& m, Rng& rng) {
  TFM_CHECK(ids.dtype() == DType::I64, "mask_for_mlm: ids must be I64");
  TFM_CHECK(m.mask_id >= 0 && m.mask_id < m.vocab_size, "mask_for_mlm: mask id {} outside the vocabulary",
            m.mask_id);
  const int64_t n = ids.numel();
  MaskedBatch out;
  out.inputs = ids.clone();
  out.labels = Tensor::empty(ids.shape(), DType::I64);
  const int64_t* in = ids.data<int64_t>();
  int64_t* x = out.inputs.data<int64_t>();
  int64_t* y = out.labels.data<int64_t>();
  auto special = [&](int64_t id) {
    return std::find(m.special_ids.begin(), m.special_ids.end(), id) != m.special_ids.end();
  };
  // corrupt(i): the 80/10/10 rule for a chosen token, from its second and third numbers.
  const uint64_t first = rng.take(uint64_t(3 * n));
  auto corrupt = [&](int64_t i) {
    y[i] = in[i];
    ++out.chosen;
    const float how = uniform_at(rng.seed(), first + uint64_t(3 * i + 1));
    if (how < 0.8f) {
      x[i] = m.mask_id;
    } else if (how < 0.9f) {
      const float r = uniform_at(rng.seed(), first + uint64_t(3 * i + 2));
      x[i] = std::min(m.vocab_size - 1, int64_t(r * float(m.vocab_size)));
    }
  };
  std::vector<int64_t> eligible;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = m.ignore_id;
    if (special(in[i])) continue;
    eligible.push_back(i);
    if (uniform_at(rng.seed(), first + uint64_t(3 * i)) < float(m.probability)) corrupt(i);
  }
  if (out.chosen == 0 && !eligible.empty()) {
    const float r = rng.uniform();
    corrupt(eligible[std::min(eligible.size() - 1, size_t(r * float(eligible.size())))]);
  }
  return out;
}

}  // namespace tfm::data
