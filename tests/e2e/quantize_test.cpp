// `tfm quantize`: the quality targets of issues 6 and 17 measured on lm-kjv in CI (perplexity on its held-out
// verses within 1% of the float model's at INT8 and Q8_0, 5% at Q4_0, 0.1% at bfloat16 and float16), and a
// quantized checkpoint reloads into the same model: the integer kernels give the logits of the dequantized
// weights up to the input's own quantization, and the file holds integers.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;

double perplexity(const std::string& model) {
  const CliResult r = run_cli("perplexity --model " + model + " --file " + test::shared_dir() +
                              "/models/lm-kjv/eval/kjv-tail300.txt --context 256 --stride 256");
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out)["perplexity"].get<double>();
}

TEST(Quantize, LmKjvPerplexityStaysWithinTheTargets) {
  const std::string dir = test::temp_dir("quantize");
  const double base = perplexity(test::shared_dir() + "/models/lm-kjv");
  EXPECT_NEAR(base, 192.594, 0.2);
  // Issue 17: bfloat16 and float16 within 0.1%, ggml's Q8_0 within 1%, Q4_0 (= int4) within 5%.
  struct Target {
    const char* type;
    double limit;
    DType stored;
    bool scale;  // a float32 .scale tensor beside the weight (int8); the block types hold theirs inside
    const char* format;
  };
  for (const Target& t :
       {Target{"int8", 0.01, DType::I8, true, "int8"}, Target{"int4", 0.05, DType::U8, false, "q4_0"},
        Target{"q8_0", 0.01, DType::U8, false, "q8_0"}, Target{"bf16", 0.001, DType::BF16, false, "bf16"},
        Target{"f16", 0.001, DType::F16, false, "f16"}}) {
    const CliResult q = run_cli("quantize --model " + test::shared_dir() + "/models/lm-kjv --type " + t.type +
                                " --out " + dir + "/" + t.type);
    ASSERT_EQ(q.code, 0) << q.err;
    const double ppl = perplexity(dir + "/" + t.type);
    EXPECT_LT(std::abs(ppl / base - 1), t.limit) << t.type << ": " << ppl << " vs " << base;
    if (std::string(t.type) == "f16")  // lm-kjv ships in float16: its weights convert exactly
      EXPECT_NEAR(ppl, base, 1e-6 * base);
    else
      EXPECT_NE(ppl, base) << t.type << ": the quantized weights were not used";
    const io::SafetensorsFile f = io::SafetensorsFile::open(dir + "/" + t.type + "/checkpoint.safetensors");
    const std::string w = "model.decoder.layers.0.fc1.weight";
    EXPECT_EQ(f.info(w).dtype, t.stored) << t.type;
    EXPECT_EQ(f.contains(w + ".scale"), t.scale) << t.type;
    const auto formats = nlohmann::json::parse(f.metadata().at("tfm.weight_formats"));
    EXPECT_EQ(formats.at(w.substr(6)), t.format) << t.type;
  }
}

TEST(Quantize, Q4NeedsBlocksOf32) {
  const std::string dir = test::temp_dir("quantize-odd");
  std::ofstream(dir + "/text.txt") << "In the beginning God created the heaven and the earth.\n";
  std::ofstream(dir + "/run.toml") << "[model]\narch = \"decoder-only\"\nd_model = 24\nheads = 2\nd_ff = 48\n"
                                      "decoder_layers = 1\nmax_len = 16\n[data]\ntrain = \""
                                   << dir << "/text.txt\"\nvalid = \"\"\nvocab_size = 300\nmax_tokens = 32\n"
                                   << "[train]\nmax_steps = 1\nout_dir = \"" << dir << "/run\"\n";
  ASSERT_EQ(run_cli("train --config " + dir + "/run.toml --quiet").code, 0);
  const CliResult r = run_cli("quantize --model " + dir + "/run --type int4 --out " + dir + "/q4");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("decoder.layers.0.self_attn.q_proj.weight: q4_0 needs rows of a multiple of 32"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(run_cli("quantize --model " + dir + "/run --type int8 --out " + dir + "/q8").code, 0);
  const CliResult g =
      run_cli("generate --model " + dir + "/q8 --prompt 'In the' --greedy --max-new-tokens 3");
  EXPECT_EQ(g.code, 0) << g.err;
}

}  // namespace
}  // namespace tfm
