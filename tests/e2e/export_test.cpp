// `tfm export --hf`: a model tfm trained, written as a Hugging Face folder and read back through tfm's
// Hugging Face loader (the family mappings), gives the same logits as the run it came from, for the
// Marian, GPT-2 and Llama layouts; the exported tokenizer frames Marian sources as tfm trained them; a
// model a layout cannot express is refused with every difference named. (Checked against `transformers`
// itself only where it is installed; it is not on this machine.)
#include <gtest/gtest.h>

#include <fstream>

#include "autograd/tape.h"
#include "cli_runner.h"
#include "models/load_model.h"
#include "test_support.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;

std::string corpus(const std::string& dir, int column) {
  std::ifstream in(test::shared_dir() + "/data/bible-en-es/train.tsv");
  std::ofstream out(dir + "/train.txt");
  std::string line;
  for (int i = 0; i < 300 && std::getline(in, line); ++i)
    out << (column == 0 ? line : line.substr(0, line.find('\t'))) << "\n";
  return dir + "/train.txt";
}

// Trains a few steps of `model` (TOML lines of [model]) and exports the run; returns the CLI's result.
CliResult train_and_export(const std::string& dir, const std::string& model, bool text,
                           const std::string& layout) {
  std::ofstream(dir + "/run.toml") << "[model]\nd_model = 32\nheads = 4\nd_ff = 64\nencoder_layers = 2\n"
                                      "decoder_layers = 2\nmax_len = 48\n"
                                   << model << "\n[data]\ntrain = \"" << corpus(dir, text ? 1 : 0)
                                   << "\"\nvalid = \"\"\nvocab_size = 500\nmax_tokens = 800\n[train]\n"
                                      "max_steps = 6\nwarmup_steps = 2\nlr = 3e-3\nthreads = 2\nout_dir = \""
                                   << dir << "/run\"\n";
  const CliResult t = run_cli("train --config " + dir + "/run.toml --quiet");
  EXPECT_EQ(t.code, 0) << t.err;
  return run_cli("export --model " + dir + "/run --hf " + dir + "/hf --layout " + layout);
}

// Logits of both models on the same ids, compared.
void expect_same_logits(const std::string& dir) {
  const LoadedModel run = load_model(dir + "/run");
  const LoadedModel hf = load_model(dir + "/hf");
  ASSERT_NE(hf.family, nullptr);
  const std::vector<int32_t> src = run.src->encode("In the beginning God created the heavens and the earth.");
  const int64_t n = int64_t(src.size());
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context c{tape, false, nullptr};
  auto logits = [&](const Transformer& m) {
    Tensor ids = Tensor::empty({1, n}, DType::I64);
    for (int64_t i = 0; i < n; ++i) ids.data<int64_t>()[i] = src[size_t(i)];
    if (m.config().arch == Arch::DecoderOnly) return m.project(c, m.decode_only(c, ids)).value();
    Tensor framed = Tensor::empty({1, n + 2}, DType::I64), tgt = Tensor::empty({1, 4}, DType::I64);
    framed.data<int64_t>()[0] = m.config().bos_id;
    for (int64_t i = 0; i < n; ++i) framed.data<int64_t>()[i + 1] = src[size_t(i)];
    framed.data<int64_t>()[n + 1] = m.config().eos_id;
    for (int64_t i = 0; i < 4; ++i) tgt.data<int64_t>()[i] = i == 0 ? m.config().bos_id : src[size_t(i)];
    return m.project(c, m.decode(c, m.encode(c, framed), framed, tgt)).value();
  };
  const Tensor a = logits(*run.model), b = logits(*hf.model);
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_NEAR(a.f32()[i], b.f32()[i], 1e-4) << "logit " << i;
}

// The model has no attention biases (Marian has them: written as zeros) and a trained output bias (written
// as Marian's final_logits_bias).
TEST(Export, MarianLayoutRoundTrips) {
  const std::string dir = test::temp_dir("export-marian");
  const CliResult r = train_and_export(
      dir,
      "norm = \"layernorm\"\nnorm_eps = 1e-5\nnorm_position = \"post\"\npositions = \"sinusoidal_half\"\n"
      "tie_embeddings = true\nshare_embeddings = true",
      false, "auto");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("model_type marian"), std::string::npos) << r.out;
  expect_same_logits(dir);
  // The exported tokenizer frames a source as <s> ids </s>, as tfm's training did.
  const LoadedModel run = load_model(dir + "/run"), hf = load_model(dir + "/hf");
  std::vector<int32_t> framed = run.src->encode("Jesus wept.");
  framed.insert(framed.begin(), run.src->bos_id());
  framed.push_back(run.src->eos_id());
  EXPECT_EQ(hf.src->encode("Jesus wept."), framed);
}

TEST(Export, Gpt2LayoutRoundTrips) {
  const std::string dir = test::temp_dir("export-gpt2");
  const CliResult r = train_and_export(
      dir,
      "arch = \"decoder-only\"\nnorm = \"layernorm\"\npositions = \"learned\"\nactivation = \"gelu_tanh\"\n"
      "scale_embeddings = false\nattention_bias = true\noutput_bias = false\ntie_embeddings = true",
      true, "auto");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("model_type gpt2"), std::string::npos) << r.out;
  expect_same_logits(dir);
}

TEST(Export, LlamaLayoutRoundTrips) {
  const std::string dir = test::temp_dir("export-llama");
  const CliResult r = train_and_export(
      dir,
      "arch = \"decoder-only\"\nnorm = \"rmsnorm\"\npositions = \"rope\"\nactivation = \"swiglu\"\n"
      "kv_heads = 2\nscale_embeddings = false\nffn_bias = false\noutput_bias = false",
      true, "auto");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("model_type llama"), std::string::npos) << r.out;
  expect_same_logits(dir);
}

TEST(Export, AModelTheLayoutCannotExpressIsRefused) {
  const std::string dir = test::temp_dir("export-seed");
  const CliResult r = train_and_export(dir, "", false, "marian");  // the seed: pre-norm, its own LayerNorm
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("cannot be written in the Marian layout"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Marian is post-norm"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sinusoidal in its half-split layout"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tfm
