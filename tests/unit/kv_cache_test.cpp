// Decoding with the KV cache (infer/model_decoder.h) gives the logits of recomputing the whole prefix
// with the ordinary forward pass, for Marian-, seed- and GPT-2-shaped models: across steps that skip
// rows, batched prefills of prompts of different lengths, and beam-style reorders that duplicate and
// drop rows. Steady-state steps allocate nothing.
#include <gtest/gtest.h>

#include "infer/kv_cache.h"
#include "infer/model_decoder.h"
#include "model_shapes.h"
#include "models/transformer.h"
#include "test_support.h"

namespace tfm {
namespace {

ModelConfig small(Arch arch) {
  return test::sized(arch, {.vocab = 40,
                            .d_model = 16,
                            .heads = 4,
                            .d_ff = 24,
                            .encoder_layers = 2,
                            .decoder_layers = 3,
                            .max_len = 24});
}

// HF Marian: post-norm, half-split sinusoids, scaled and tied embeddings, decoder starts from pad.
ModelConfig marian_shaped() {
  ModelConfig c = small(Arch::EncoderDecoder);
  c.norm = NormType::LayerNorm;
  c.norm_eps = 1e-5f;
  c.norm_position = NormPosition::Post;
  c.final_norm = false;
  c.positions = PositionKind::SinusoidalHalf;
  c.embedding_scale = 4.0f;
  c.share_embeddings = c.tie_output = true;
  c.output_bias = false;
  c.final_logits_bias = true;
  c.attention_bias = true;
  c.pad_id = c.bos_id = 0;
  c.eos_id = 1;
  c.mask_decoder_padding = false;
  return c;
}

// The seed: pre-norm, interleaved sinusoids, decoder padding masked as keys.
ModelConfig seed_shaped() { return small(Arch::EncoderDecoder); }

// GPT-2: decoder-only, learned positions, pre-norm with a final norm, GELU (tanh), tied output.
ModelConfig gpt2_shaped() {
  ModelConfig c = test::gpt2_layout(small(Arch::DecoderOnly));
  c.activation = Activation::GeluTanh;
  return c;
}

// Llama / Mistral: RMSNorm, RoPE, grouped-query attention, SwiGLU; `window` > 0 for Mistral's sliding window.
ModelConfig llama_shaped(int64_t window) { return test::llama_layout(gpt2_shaped(), /*kv_heads=*/2, window); }

// BLOOM: ALiBi instead of position embeddings, embedding LayerNorm.
ModelConfig bloom_shaped() { return test::bloom_layout(gpt2_shaped()); }

// T5: relative position buckets (from the first layer's table), RMS norms, no attention scaling.
ModelConfig t5_shaped() {
  ModelConfig c = marian_shaped();
  c.norm = NormType::RMSNorm;
  c.norm_bias = false;
  c.norm_position = NormPosition::Pre;
  c.final_norm = true;
  c.positions = PositionKind::T5Relative;
  c.relative_buckets = 8;
  c.relative_max_distance = 16;
  c.scale_attention = false;
  c.attention_bias = c.ffn_bias = false;
  c.final_logits_bias = false;
  c.embedding_scale = 1.0f;
  return c;
}

Tensor ids_tensor(const std::vector<int64_t>& ids) {
  Tensor t = Tensor::empty_persistent({1, int64_t(ids.size())}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<int64_t>());
  return t;
}

// The logits after the last token of `prefix`, by the full forward pass over the whole prefix (and
// over `source` alone, for an encoder-decoder).
Tensor full_logits(const Transformer& model, const std::vector<int64_t>& source,
                   const std::vector<int64_t>& prefix) {
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context c{tape, false, nullptr};
  const Tensor tgt = ids_tensor(prefix);
  ag::Var hidden;
  if (model.config().arch == Arch::EncoderDecoder) {
    const Tensor src = ids_tensor(source);
    hidden = model.decode(c, model.encode(c, src), src, tgt);
  } else {
    hidden = model.decode_only(c, tgt);
  }
  const Tensor logits = model.project(c, hidden).value();  // [1, len, vocab]
  return logits.select(0, 0).narrow(0, int64_t(prefix.size()) - 1, 1).clone(/*persistent=*/true);
}

// Drives a ModelDecoder and checks every logits row it returns against full_logits.
class Checker {
 public:
  Checker(const Transformer& model, std::vector<std::vector<int64_t>> sources, int64_t rows,
          int64_t max_positions = 12, int64_t prefill_chunk = 1024)
      : model_(model),
        sources_(std::move(sources)),
        decoder_(model.config().arch == Arch::EncoderDecoder
                     ? infer::ModelDecoder(
                           model, sources_,
                           {.max_positions = max_positions, .max_rows = 8, .prefill_chunk = prefill_chunk})
                     : infer::ModelDecoder(
                           model, rows,
                           {.max_positions = max_positions, .max_rows = 8, .prefill_chunk = prefill_chunk})),
        prefix_(size_t(rows)) {
    for (int64_t r = 0; r < rows; ++r) source_of_.push_back(sources_.empty() ? -1 : r);
  }

  void step(const std::vector<int64_t>& rows, const std::vector<int64_t>& tokens) {
    for (size_t i = 0; i < rows.size(); ++i) prefix_[size_t(rows[i])].push_back(tokens[i]);
    check(rows, decoder_.step(rows, tokens));
  }
  void prefill(const std::vector<int64_t>& rows, const std::vector<std::vector<int64_t>>& prompts) {
    for (size_t i = 0; i < rows.size(); ++i)
      prefix_[size_t(rows[i])].insert(prefix_[size_t(rows[i])].end(), prompts[i].begin(), prompts[i].end());
    check(rows, decoder_.prefill(rows, prompts));
  }
  void reorder(const std::vector<int64_t>& parents) {
    std::vector<std::vector<int64_t>> prefix;
    std::vector<int64_t> source_of;
    for (int64_t p : parents)
      prefix.push_back(prefix_[size_t(p)]), source_of.push_back(source_of_[size_t(p)]);
    prefix_ = prefix, source_of_ = source_of;
    decoder_.reorder(parents);
  }
  infer::ModelDecoder& decoder() { return decoder_; }

 private:
  void check(const std::vector<int64_t>& rows, const Tensor& logits) {
    ASSERT_EQ(logits.shape(), (Shape{int64_t(rows.size()), model_.config().tgt_vocab}));
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t r = rows[i];
      const std::vector<int64_t> no_source;
      const Tensor want =
          full_logits(model_, source_of_[size_t(r)] < 0 ? no_source : sources_[size_t(source_of_[size_t(r)])],
                      prefix_[size_t(r)]);
      EXPECT_TRUE(test::expect_close(
          "row " + std::to_string(r) + " after " + std::to_string(prefix_[size_t(r)].size()) + " tokens",
          logits.narrow(0, int64_t(i), 1), want, 1e-5));
    }
  }

  const Transformer& model_;
  std::vector<std::vector<int64_t>> sources_;
  infer::ModelDecoder decoder_;
  std::vector<std::vector<int64_t>> prefix_;
  std::vector<int64_t> source_of_;
};

void check_encoder_decoder(const ModelConfig& config) {
  Transformer model(config);
  model.init_weights(7);
  const int64_t start = config.bos_id;
  // Sources of different lengths (padded together inside the decoder).
  Checker check(model, {{5, 9, 12, 3, 2}, {7, 4, 2}, {11, 13, 8, 6, 9, 21, 2}}, 3);
  check.step({0, 1, 2}, {start, start, start});
  check.step({0, 2}, {17, 4});       // row 1 is not stepped
  check.step({1}, {config.pad_id});  // a pad token fed mid-sequence (masked as a key by the seed)
  check.reorder({2, 0, 0, 1});       // beams: row 0 duplicated, rows follow other sources
  check.step({0, 1, 2, 3}, {5, 6, 7, 8});
  check.reorder({3, 1});  // rows dropped
  check.step({0, 1}, {9, 10});
  check.step({1, 0}, {11, 12});  // rows in any order
}

TEST(KvCache, MarianShapedIncrementalEqualsFullRecompute) { check_encoder_decoder(marian_shaped()); }

TEST(KvCache, SeedShapedIncrementalEqualsFullRecompute) { check_encoder_decoder(seed_shaped()); }

// prefill_chunk: prompts longer than this go through in several passes.
void check_decoder_only(const ModelConfig& config, int64_t prefill_chunk = 1024) {
  Transformer model(config);
  model.init_weights(3);
  Checker check(model, {}, 3, 12, prefill_chunk);
  check.prefill({0, 1, 2}, {{4, 8, 15}, {16, 23, 42 % 40, 1, 2, 3}, {9}});  // one batched pass
  check.step({0, 1, 2}, {5, 6, 7});
  check.step({2, 0}, {8, 9});
  check.reorder({1, 1, 2});
  check.step({0, 1, 2}, {10, 11, 12});
  check.prefill({1}, {{13, 14}});  // more prompt after some steps
}

TEST(KvCache, Gpt2ShapedPrefillAndStepsEqualFullRecompute) { check_decoder_only(gpt2_shaped()); }

TEST(KvCache, LlamaShapedRopeAndGroupedQueriesEqualFullRecompute) { check_decoder_only(llama_shaped(0)); }

TEST(KvCache, MistralShapedSlidingWindowEqualsFullRecompute) { check_decoder_only(llama_shaped(3)); }

TEST(KvCache, BlockSparseWindowPlusGlobalTokensEqualsFullRecompute) {
  ModelConfig c = llama_shaped(2);
  c.global_tokens = 2;  // every row keeps its first two keys visible: a ring of 2 after them
  check_decoder_only(c);
}

// Linear attention decodes from its running sums (a fixed head_dim x head_dim state per row and layer),
// with the seed's decoder padding flags from its cached keys: both give the full forward's logits.
TEST(KvCache, LinearAttentionEqualsFullRecompute) {
  ModelConfig c = llama_shaped(0);
  c.attention = AttentionKind::Linear;
  {
    Transformer model(c);
    infer::ModelDecoder decoder(model, 1, {.max_positions = 12, .max_rows = 1});
    EXPECT_TRUE(decoder.cache().state());
    EXPECT_EQ(decoder.cache().stored_positions(), c.attention_head_dim());
  }
  check_decoder_only(c);
  ModelConfig seed = seed_shaped();
  seed.attention = AttentionKind::Linear;
  check_encoder_decoder(seed);
}

// Prompts fed in passes of 2 tokens per row (rows whose prompts end in different passes): the same logits.
TEST(KvCache, PromptsInChunksEqualFullRecompute) {
  check_decoder_only(gpt2_shaped(), 2);
  check_decoder_only(llama_shaped(3), 2);  // a ring of 3
  ModelConfig linear = llama_shaped(0);
  linear.attention = AttentionKind::Linear;
  check_decoder_only(linear, 2);
}

TEST(KvCache, BloomShapedAlibiEqualsFullRecompute) { check_decoder_only(bloom_shaped()); }

TEST(KvCache, T5ShapedRelativeBiasEqualsFullRecompute) { check_encoder_decoder(t5_shaped()); }

// A sliding window of 4 keeps 4 positions per row (a ring), however long the rows grow: rows of up to
// 24 tokens, fed one token at a time (the step that overwrites the oldest key attends in ring order) and
// in chunks longer than the window (attending to the unrolled window), across beam reorders. With `global`
// tokens (block-sparse) the cache keeps them too, before the ring.
void check_ring(ModelConfig config, int64_t global = 0) {
  config.sliding_window = 4;
  config.global_tokens = global;
  Transformer model(config);
  model.init_weights(5);
  Checker check(model, {}, 2, /*max_positions=*/24);
  EXPECT_EQ(check.decoder().cache().ring(), 4);
  EXPECT_EQ(check.decoder().cache().sinks(), global);
  EXPECT_EQ(check.decoder().cache().stored_positions(), 4 + global);
  check.prefill({0, 1}, {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {8, 9}});  // row 0 wraps inside its prompt
  for (int64_t t = 0; t < 6; ++t) check.step({0, 1}, {10 + t, 20 + t});
  check.reorder({1, 0, 1});                        // row 1 duplicated into a copied ring
  check.prefill({2}, {{30, 31, 32, 33, 34, 35}});  // a chunk longer than the window after the ring wrapped
  check.prefill({0}, {{36, 37}});                  // a short chunk into a wrapped ring
  for (int64_t t = 0; t < 5; ++t) check.step({0, 1, 2}, {t + 1, t + 2, t + 3});
}

TEST(KvCache, SlidingWindowRingEqualsFullRecompute) { check_ring(llama_shaped(0)); }

TEST(KvCache, SlidingWindowRingWithAlibiEqualsFullRecompute) { check_ring(bloom_shaped()); }

TEST(KvCache, SlidingWindowRingWithLearnedPositionsEqualsFullRecompute) { check_ring(gpt2_shaped()); }

TEST(KvCache, BlockSparseRingAfterGlobalTokensEqualsFullRecompute) {
  check_ring(llama_shaped(0), 2);
  check_ring(bloom_shaped(), 3);  // ALiBi: the global keys' and the ring's true positions
  check_ring(gpt2_shaped(), 1);
}

TEST(KvCache, SteadyStateStepsAllocateNothing) {
  Transformer model(marian_shaped());
  model.init_weights(1);
  infer::ModelDecoder decoder(model, {{5, 9, 2}, {7, 2}}, {.max_positions = 12, .max_rows = 4});
  EXPECT_EQ(decoder.cache().allocations(), 1);
  decoder.step(std::vector<int64_t>{0, 1}, std::vector<int64_t>{0, 0});
  decoder.reorder(std::vector<int64_t>{0, 0, 1, 1});  // expand to beams: within max_rows
  decoder.step(std::vector<int64_t>{0, 1, 2, 3}, std::vector<int64_t>{3, 4, 5, 6});
  const size_t arena_blocks = decoder.arena_heap_allocations();
  for (int i = 0; i < 6; ++i) {
    decoder.reorder(std::vector<int64_t>{1, 0, 0, 3});
    decoder.step(std::vector<int64_t>{0, 1, 2, 3}, std::vector<int64_t>{7, 8, 9, 10});
  }
  EXPECT_EQ(decoder.cache().allocations(), 1);
  EXPECT_EQ(decoder.arena_heap_allocations(), arena_blocks);
  EXPECT_EQ(decoder.cache().length(0), 8);
}

TEST(KvCache, ReorderBeyondCapacityGrowsAndKeepsRows) {
  infer::KvCache cache(1, 2, 4, 2, 2, false);
  cache.keys(0, 0)[0] = 1.5f, cache.keys(0, 1)[0] = 2.5f;
  cache.append(0, 1), cache.append(1, 1);
  cache.reorder(std::vector<int64_t>{1, 0, 1});
  EXPECT_EQ(cache.allocations(), 2);
  EXPECT_EQ(cache.keys(0, 0)[0], 2.5f);
  EXPECT_EQ(cache.keys(0, 1)[0], 1.5f);
  EXPECT_EQ(cache.keys(0, 2)[0], 2.5f);
  EXPECT_EQ(cache.length(2), 1);
}

TEST(KvCache, ErrorsNameTheProblem) {
  Transformer model(gpt2_shaped());
  model.init_weights(2);
  infer::ModelDecoder decoder(model, 2, {.max_positions = 4, .max_rows = 0});
  EXPECT_NE(test::error_of([&] {
              decoder.prefill(std::vector<int64_t>{0}, std::vector<std::vector<int64_t>>{{1, 2, 3, 4, 5}});
            }).find("would hold 5 tokens; at most 4"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              decoder.step(std::vector<int64_t>{1}, std::vector<int64_t>{40});
            }).find("token id 40 outside the vocabulary of 40"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              decoder.step(std::vector<int64_t>{1, 1}, std::vector<int64_t>{3, 4});
            }).find("row 1 is not one of 2 distinct rows"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { decoder.reorder(std::vector<int64_t>{2}); }).find("parent 2 of 2 rows"),
            std::string::npos);
}

}  // namespace
}  // namespace tfm
