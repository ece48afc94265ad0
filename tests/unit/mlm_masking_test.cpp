// BERT's 80/10/10 masking against its definition: the shares of chosen, masked, replaced and kept tokens
// (binomial counts within 5 standard deviations), special tokens never chosen, labels only where chosen,
// and the result a function of the generator's position alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "data/mlm_masking.h"

namespace tfm::data {
namespace {

constexpr int64_t kVocab = 1000, kMask = 3;

Tensor ids_with_specials(int64_t n) {
  Tensor ids = Tensor::empty({n / 100, 100}, DType::I64);
  for (int64_t i = 0; i < n; ++i) ids.data<int64_t>()[i] = i % 50 == 0 ? 2 : 10 + (i * 7919) % (kVocab - 10);
  return ids;
}

MlmMasking masking() {
  MlmMasking m;
  m.probability = 0.15;
  m.mask_id = kMask;
  m.vocab_size = kVocab;
  m.special_ids = {0, 1, 2, kMask};
  return m;
}

// |count - n p| within 5 standard deviations of a binomial(n, p).
void expect_binomial(int64_t count, int64_t n, double p, const char* what) {
  const double sd = std::sqrt(double(n) * p * (1 - p));
  EXPECT_NEAR(double(count), double(n) * p, 5 * sd) << what << ": " << count << " of " << n;
}

TEST(MlmMasking, SharesFollowBertsRule) {
  const int64_t n = 200'000;
  const Tensor ids = ids_with_specials(n);
  Rng rng(7);
  const MaskedBatch b = mask_for_mlm(ids, masking(), rng);
  int64_t eligible = 0, chosen = 0, masked = 0, replaced = 0, kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids.data<int64_t>()[i], in = b.inputs.data<int64_t>()[i],
                  label = b.labels.data<int64_t>()[i];
    if (id == 2) {
      EXPECT_EQ(in, 2) << "a special token was corrupted at " << i;
      EXPECT_EQ(label, -100) << "a special token is a target at " << i;
      continue;
    }
    ++eligible;
    if (label == -100) {
      EXPECT_EQ(in, id) << "a token that is no target changed at " << i;
      continue;
    }
    ASSERT_EQ(label, id) << "the label is not the original id at " << i;
    ++chosen;
    if (in == kMask)
      ++masked;
    else if (in == id)
      ++kept;
    else
      ++replaced;
    ASSERT_TRUE(in >= 0 && in < kVocab);
  }
  EXPECT_EQ(b.chosen, chosen);
  expect_binomial(chosen, eligible, 0.15, "chosen");
  expect_binomial(masked, chosen, 0.8, "masked");
  // A random replacement equal to the original (1 in 1000) counts as kept.
  expect_binomial(replaced, chosen, 0.1 * (1 - 1.0 / kVocab), "replaced");
  expect_binomial(kept, chosen, 0.1 + 0.1 / kVocab, "kept");
}

TEST(MlmMasking, DependsOnTheGeneratorPositionOnly) {
  const Tensor ids = ids_with_specials(1000);
  Rng a(11, 500), b(11, 500), c(11, 501);
  const MaskedBatch x = mask_for_mlm(ids, masking(), a), y = mask_for_mlm(ids, masking(), b),
                    z = mask_for_mlm(ids, masking(), c);
  EXPECT_EQ(std::memcmp(x.inputs.raw(), y.inputs.raw(), x.inputs.nbytes()), 0);
  EXPECT_EQ(std::memcmp(x.labels.raw(), y.labels.raw(), x.labels.nbytes()), 0);
  EXPECT_NE(std::memcmp(x.labels.raw(), z.labels.raw(), x.labels.nbytes()), 0);
  EXPECT_EQ(a.offset(), b.offset());
}

TEST(MlmMasking, AlwaysAtLeastOneTargetWhenOneIsEligible) {
  Tensor ids = Tensor::empty({1, 3}, DType::I64);
  ids.data<int64_t>()[0] = 1, ids.data<int64_t>()[1] = 42, ids.data<int64_t>()[2] = 2;
  MlmMasking m = masking();
  m.probability = 1e-9;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    const MaskedBatch b = mask_for_mlm(ids, m, rng);
    EXPECT_EQ(b.chosen, 1);
    EXPECT_EQ(b.labels.data<int64_t>()[1], 42);
  }
  Tensor specials = Tensor::empty({1, 2}, DType::I64);
  specials.data<int64_t>()[0] = 1, specials.data<int64_t>()[1] = 2;
  Rng rng(0);
  EXPECT_EQ(mask_for_mlm(specials, m, rng).chosen, 0);
}

}  // namespace
}  // namespace tfm::data
