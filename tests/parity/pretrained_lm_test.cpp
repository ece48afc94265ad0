// The trained GPT-2 model in shared/models/lm-kjv (a Hugging Face folder, float16 weights): greedy
// continuations of the six prompts of scores.json give its ids (generated with Hugging Face's generate),
// and perplexity on eval/kjv-tail300.txt is the one in eval/kjv-tail300.json within 0.1%.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "infer/generate.h"
#include "infer/lm_perplexity.h"
#include "models/family.h"
#include "test_support.h"

namespace tfm {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

class PretrainedLm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new Pretrained(load_pretrained(dir())); }
  static void TearDownTestSuite() { delete model_; }
  static std::string dir() { return test::shared_dir() + "/models/lm-kjv"; }
  static Pretrained* model_;
};

Pretrained* PretrainedLm::model_ = nullptr;

TEST_F(PretrainedLm, GreedyContinuationsEqualHuggingFace) {
  const nlohmann::json scores = read_json(dir() + "/scores.json");
  ASSERT_EQ(scores["greedy"].size(), 6u);
  for (const nlohmann::json& g : scores["greedy"]) {
    const std::string prompt = g["prompt"];
    const std::vector<int64_t> want_prompt = g["prompt_ids"], want = g["greedy_ids"];
    const std::vector<int32_t> encoded = model_->tokenizer->encode(prompt);
    const std::vector<int64_t> ids(encoded.begin(), encoded.end());
    EXPECT_EQ(ids, want_prompt) << prompt;
    infer::GenerateOptions o;
    o.rules.max_new_tokens = 40;
    o.rules.eos_id = model_->model->config().eos_id;
    std::vector<int64_t> got = ids;
    const std::vector<int64_t> generated = infer::generate(*model_->model, {ids}, o)[0];
    got.insert(got.end(), generated.begin(), generated.end());
    EXPECT_EQ(got, want) << prompt;
    const std::vector<int32_t> got32(got.begin(), got.end());
    EXPECT_EQ(model_->tokenizer->decode(got32), g["text"].get<std::string>()) << prompt;
  }
}

TEST_F(PretrainedLm, PerplexityOfTheHeldOutTail) {
  const nlohmann::json want = read_json(dir() + "/eval/kjv-tail300.json");
  std::ifstream in(dir() + "/eval/kjv-tail300.txt");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const std::vector<int64_t> stream = infer::text_stream(*model_->tokenizer, lines, 0);  // <|endoftext|>
  EXPECT_EQ(int64_t(stream.size()), want["stream_tokens"].get<int64_t>());
  const metrics::PerplexityAccumulator acc = infer::lm_perplexity(*model_->model, stream, 256, 256);
  EXPECT_EQ(acc.tokens, want["tokens"].get<int64_t>());
  const double ppl = want["perplexity"];
  EXPECT_NEAR(acc.perplexity(), ppl, 1e-3 * ppl);
  std::printf("  lm-kjv perplexity %.4f over %lld tokens (reference %.4f)\n", acc.perplexity(),
              static_cast<long long>(acc.tokens), ppl);
}

TEST_F(PretrainedLm, PromptLongerThanTheContextIsAnError) {
  infer::GenerateOptions o;
  const std::vector<int64_t> long_prompt(257, 259);
  EXPECT_NE(test::error_of([&] {
              infer::generate(*model_->model, {long_prompt}, o);
            }).find("prompt 1 has 257 tokens, longer than the model's context of 256 tokens"),
            std::string::npos);
  // A prompt that fills the context gets exactly one new token (the context is then full).
  const std::vector<int64_t> full(256, 259);
  o.rules.max_new_tokens = 10;
  EXPECT_EQ(infer::generate(*model_->model, {full}, o)[0].size(), 1u);
}

}  // namespace
}  // namespace tfm
