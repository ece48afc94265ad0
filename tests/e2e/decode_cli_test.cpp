// tfm generate, perplexity, translate and inspect on the trained models in shared/models: the streamed
// greedy text equals Hugging Face's (scores.json), perplexity prints one JSON line with the reference
// value, an empty stdin line translates to an empty line, inspect names the architecture and dtypes.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "test_support.h"

namespace tfm {
namespace {

using test::run_cli;

std::string models() { return test::shared_dir() + "/models"; }

TEST(DecodeCli, GenerateGreedyStreamsHuggingFaceText) {
  std::ifstream in(models() + "/lm-kjv/scores.json");
  const nlohmann::json scores = nlohmann::json::parse(in);
  for (const nlohmann::json& g : scores["greedy"]) {
    const test::CliResult r = run_cli("generate --model '" + models() + "/lm-kjv' --prompt '" +
                                      g["prompt"].get<std::string>() + "' --max-new-tokens 40 --greedy");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, g["text"].get<std::string>() + "\n");
  }
}

TEST(DecodeCli, GenerateRejectsAPromptLongerThanTheContext) {
  std::string prompt;
  for (int i = 0; i < 300; ++i) prompt += " the";
  const test::CliResult r =
      run_cli("generate --model '" + models() + "/lm-kjv' --prompt '" + prompt + "' --greedy");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("longer than the model's context of 256 tokens"), std::string::npos) << r.err;
}

TEST(DecodeCli, PerplexityPrintsOneJsonLine) {
  const std::string dir = models() + "/lm-kjv";
  const test::CliResult r = run_cli("perplexity --model '" + dir + "' --file '" + dir +
                                    "/eval/kjv-tail300.txt' --context 256 --stride 256");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json got = nlohmann::json::parse(r.out);
  std::ifstream in(dir + "/eval/kjv-tail300.json");
  const nlohmann::json want = nlohmann::json::parse(in);
  EXPECT_EQ(got["tokens"], want["tokens"]);
  EXPECT_NEAR(got["perplexity"].get<double>(), want["perplexity"].get<double>(),
              1e-3 * want["perplexity"].get<double>());
}

TEST(DecodeCli, TranslateKeepsEmptyLines) {
  const test::CliResult r = run_cli("translate --model '" + models() + "/mt-en-es' --beam 2",
                                    "\nIn the beginning God created the heavens and the earth.\n\n");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
  EXPECT_TRUE(r.out.starts_with("\n"));
  EXPECT_TRUE(r.out.ends_with(".\n\n")) << r.out;
}

TEST(DecodeCli, InspectDescribesTheFolder) {
  const test::CliResult r = run_cli("inspect --model '" + models() + "/lm-kjv'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Hugging Face, model_type gpt2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("architecture  decoder-only"), std::string::npos);
  EXPECT_NE(r.out.find("layers        4 decoder"), std::string::npos);  // config.json n_layer
  EXPECT_NE(r.out.find("heads         4"), std::string::npos);          // n_head
  EXPECT_NE(r.out.find("file dtype    F16"), std::string::npos);        // config.json dtype float16
}

}  // namespace
}  // namespace tfm
