// The serving scheduler (serve/scheduler.h): a sequence decoded in batched passes with other sequences
// gives bit-identical logits, and so identical greedy, sampled and beam-search outputs, to decoding it
// alone with infer/'s ModelDecoder (what tfm generate and tfm translate run); admission respects the
// running limit and the KV-cache budget, refuses past the waiting limit, and a cancelled sequence leaves.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "infer/beam_search.h"
#include "infer/decode_batch.h"
#include "infer/model_decoder.h"
#include "infer/sampling.h"
#include "infer/translate.h"
#include "model_shapes.h"
#include "models/quantize.h"
#include "models/transformer.h"
#include "serve/scheduler.h"

namespace tfm {
namespace {

using namespace std::chrono_literals;

ModelConfig small(Arch arch) {
  return test::sized(arch, {.vocab = 61,
                            .d_model = 32,
                            .heads = 4,
                            .d_ff = 48,
                            .encoder_layers = 2,
                            .decoder_layers = 2,
                            .max_len = 40});
}

ModelConfig gpt2_shaped() { return test::gpt2_layout(small(Arch::DecoderOnly)); }

// A model with random weights, scaled up so that its logits are far from uniform (distinct argmaxes).
std::unique_ptr<Transformer> random_model(const ModelConfig& c, uint64_t seed) {
  auto m = std::make_unique<Transformer>(c);
  m->init_weights(seed);
  return m;
}

std::vector<std::vector<int64_t>> prompts(int count, int64_t vocab) {
  std::vector<std::vector<int64_t>> out;
  for (int i = 0; i < count; ++i) {
    std::vector<int64_t> p;
    for (int t = 0; t < 1 + (i * 7) % 11; ++t) p.push_back((i * 13 + t * 5 + 3) % vocab);
    out.push_back(p);
  }
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.f32(), b.f32(), size_t(a.numel()) * sizeof(float)) == 0;
}

// One pass over rows of several caches gives each row the logits of a pass of its own: float32 weights
// (GPT-2 and Llama shapes, the latter with a sliding-window ring), and INT8 and Q4_0 weights.
TEST(DecodeBatch, RowsOfOnePassEqualTheirSoloPassesBitForBit) {
  struct Case {
    ModelConfig config;
    std::optional<kernels::WeightFormat> format;
  };
  ModelConfig blocks = gpt2_shaped();  // Q4_0 quantizes rows in blocks of 32
  blocks.d_ff = 64;
  for (const Case& k :
       {Case{gpt2_shaped(), {}}, Case{test::llama_layout(gpt2_shaped(), 2, 5), {}},
        Case{blocks, kernels::WeightFormat::Int8}, Case{blocks, kernels::WeightFormat::Q4_0}}) {
    const ModelConfig& c = k.config;
    auto model = random_model(c, 3);
    if (k.format) quantize_model(*model, *k.format);
    const auto ps = prompts(6, c.tgt_vocab);
    std::vector<infer::KvCache> together, alone;
    for (size_t i = 0; i < ps.size(); ++i) {
      together.push_back(infer::make_kv_cache(*model, 1, 0, 1));
      alone.push_back(infer::make_kv_cache(*model, 1, 0, 1));
    }
    infer::DecodeBatch batch, solo;
    for (int step = 0; step < 4; ++step) {
      std::vector<infer::RowFeed> feeds;
      std::vector<std::vector<int64_t>> tokens(ps.size());
      for (size_t i = 0; i < ps.size(); ++i) {
        tokens[i] = step == 0 ? ps[i] : std::vector<int64_t>{int64_t(i * 3 + step) % c.tgt_vocab};
        feeds.push_back({.cache = &together[i], .row = 0, .tokens = tokens[i]});
      }
      const Tensor all = batch.run(*model, feeds).clone();
      for (size_t i = 0; i < ps.size(); ++i) {
        infer::RowFeed f{.cache = &alone[i], .row = 0, .tokens = tokens[i]};
        const Tensor one = solo.run(*model, {&f, 1});
        EXPECT_TRUE(same_bits(all.narrow(0, int64_t(i), 1).contiguous(), one))
            << "row " << i << " step " << step;
      }
    }
  }
}

// What a request thread runs: greedy or seeded sampling over its own sequence.
std::vector<int64_t> generate_through(serve::Scheduler& s, const std::vector<int64_t>& prompt,
                                      const infer::GenerationRules& rules,
                                      const std::optional<infer::SamplingOptions>& sampling) {
  auto seq = s.admit(1, int64_t(prompt.size()) + rules.max_new_tokens, {});
  return sampling ? infer::sample(*seq, {prompt}, rules, *sampling)[0]
                  : infer::greedy_search(*seq, {prompt}, rules)[0];
}

std::vector<int64_t> generate_alone(const Transformer& model, const std::vector<int64_t>& prompt,
                                    const infer::GenerationRules& rules,
                                    const std::optional<infer::SamplingOptions>& sampling) {
  infer::ModelDecoder decoder(model, 1, {.max_positions = 0, .max_rows = 0});
  return sampling ? infer::sample(decoder, {prompt}, rules, *sampling)[0]
                  : infer::greedy_search(decoder, {prompt}, rules)[0];
}

TEST(Scheduler, ConcurrentSequencesEqualTheirSoloDecodes) {
  auto model = random_model(gpt2_shaped(), 11);
  serve::Scheduler scheduler(*model, {.max_running = 8, .max_waiting = 64, .prefill_chunk = 1024});
  const auto ps = prompts(16, model->config().tgt_vocab);
  infer::GenerationRules rules;
  rules.max_new_tokens = 20;
  infer::SamplingOptions sampling;
  sampling.temperature = 0.9f, sampling.seed = 5;
  std::vector<std::vector<int64_t>> got(ps.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ps.size(); ++i)
    threads.emplace_back([&, i] {
      got[i] = generate_through(scheduler, ps[i], rules, i % 2 ? std::optional(sampling) : std::nullopt);
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < ps.size(); ++i)
    EXPECT_EQ(got[i], generate_alone(*model, ps[i], rules, i % 2 ? std::optional(sampling) : std::nullopt))
        << "prompt " << i;
  const serve::SchedulerStats stats = scheduler.stats();
  EXPECT_GT(stats.pass_rows, stats.passes) << "the sequences never shared a pass";
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.kv_bytes, 0);
}

// Chunked prompts (passes of 3 tokens) interleave with the other sequences and give the same tokens as a
// prompt fed in passes of 3 alone.
TEST(Scheduler, ChunkedPromptsEqualSoloDecodesInTheSameChunks) {
  auto model = random_model(gpt2_shaped(), 12);
  serve::Scheduler scheduler(*model, {.max_running = 4, .max_waiting = 8, .prefill_chunk = 3});
  const auto ps = prompts(6, model->config().tgt_vocab);
  infer::GenerationRules rules;
  rules.max_new_tokens = 12;
  std::vector<std::vector<int64_t>> got(ps.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ps.size(); ++i)
    threads.emplace_back([&, i] { got[i] = generate_through(scheduler, ps[i], rules, std::nullopt); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < ps.size(); ++i) {
    infer::ModelDecoder decoder(*model, 1, {.max_positions = 0, .max_rows = 0, .prefill_chunk = 3});
    EXPECT_EQ(got[i], infer::greedy_search(decoder, {ps[i]}, rules)[0]) << "prompt " << i;
  }
}

// Beam search of an encoder-decoder, each source encoded alone on the scheduler's thread: the hypotheses
// of decoding that source alone.
TEST(Scheduler, BeamSearchOfAnEncoderDecoderEqualsItsSoloDecode) {
  ModelConfig c = small(Arch::EncoderDecoder);
  auto model = random_model(c, 13);
  serve::Scheduler scheduler(*model, {.max_running = 8, .max_waiting = 8});
  const auto sources = prompts(5, c.tgt_vocab);
  const infer::GenerationRules rules = infer::translation_rules(c, 15);
  infer::TranslateOptions options;
  options.beams = 3;
  std::vector<std::vector<std::vector<int64_t>>> got(sources.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < sources.size(); ++i)
    threads.emplace_back([&, i] {
      auto seq = scheduler.admit(options.beams, rules.max_new_tokens, sources[i]);
      got[i] = infer::translation_search(*seq, c, 1, rules, options, 3)[0];
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < sources.size(); ++i) {
    infer::ModelDecoder decoder(*model, {sources[i]},
                                {.max_positions = rules.max_new_tokens, .max_rows = options.beams});
    EXPECT_EQ(got[i], infer::translation_search(decoder, c, 1, rules, options, 3)[0]) << "source " << i;
    EXPECT_FALSE(got[i].empty());
  }
}

// The budget admits what fits; the next waits until a sequence leaves; past max_waiting, QueueFull; a
// sequence larger than the budget, OverBudget; a cancelled waiter leaves the queue.
TEST(Scheduler, AdmissionWaitsForTheBudgetAndRefusesPastTheQueue) {
  auto model = random_model(gpt2_shaped(), 14);
  const int64_t one = infer::make_kv_cache(*model, 1, 20, 1).bytes();
  serve::Scheduler scheduler(*model,
                             {.max_running = 8, .max_waiting = 1, .kv_budget_bytes = 2 * one + one / 2});
  auto a = scheduler.admit(1, 20);
  auto b = scheduler.admit(1, 20);
  EXPECT_EQ(scheduler.stats().kv_bytes, 2 * one);
  EXPECT_THROW(scheduler.admit(3, 20), serve::OverBudget);

  std::atomic<bool> admitted{false};
  std::thread waiter([&] {
    auto c = scheduler.admit(1, 20);
    admitted = true;
  });
  while (scheduler.stats().waiting == 0) std::this_thread::sleep_for(1ms);
  EXPECT_THROW(scheduler.admit(1, 20), serve::QueueFull);  // one waits already: the queue is full
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(admitted) << "admitted past the budget";
  a.reset();  // frees room
  waiter.join();
  EXPECT_TRUE(admitted);

  std::atomic<bool> cancel{false};
  std::thread cancelled([&] {
    auto fill = scheduler.admit(1, 20);  // the budget is full again with b and this one
    std::thread second(
        [&] { EXPECT_THROW(scheduler.admit(1, 20, {}, [&] { return cancel.load(); }), serve::Cancelled); });
    while (scheduler.stats().waiting == 0) std::this_thread::sleep_for(1ms);
    cancel = true;
    second.join();
  });
  cancelled.join();
  EXPECT_EQ(scheduler.stats().waiting, 0);
  b.reset();
  EXPECT_EQ(scheduler.stats().kv_bytes, 0);
  EXPECT_EQ(scheduler.stats().running, 0);
}

// A sequence whose client went away fails its next step with Cancelled and gives its room back.
TEST(Scheduler, ACancelledSequenceStopsAtItsNextStep) {
  auto model = random_model(gpt2_shaped(), 15);
  serve::Scheduler scheduler(*model, {.max_running = 2, .max_waiting = 2});
  std::atomic<bool> gone{false};
  auto seq = scheduler.admit(1, 30, {}, [&] { return gone.load(); });
  infer::GenerationRules rules;
  rules.max_new_tokens = 25;
  int tokens = 0;
  EXPECT_THROW(infer::greedy_search(*seq, {{1, 2, 3}}, rules,
                                    [&](int64_t, int64_t) {
                                      if (++tokens == 5) gone = true;
                                    }),
               serve::Cancelled);
  EXPECT_EQ(tokens, 5);
  seq.reset();
  EXPECT_EQ(scheduler.stats().running, 0);
}

}  // namespace
}  // namespace tfm
