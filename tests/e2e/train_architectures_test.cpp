// `tfm train` beyond translation: a decoder-only language model and an encoder-only masked LM on text, a
// mixture-of-experts model with its load-balancing loss, and fine-tuning a Hugging Face model (lm-kjv).
// Each lowers its loss; interrupted runs resume bit for bit; the trained folders load in generate,
// perplexity and inspect; bad setups fail naming what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;

// Lines [first, first + n) of a shared text file.
std::string text_file(const std::string& dir, const std::string& name, const std::string& from, int first,
                      int n) {
  std::ifstream in(from);
  std::ofstream out(dir + "/" + name);
  std::string line;
  for (int i = 0; i < first + n && std::getline(in, line); ++i)
    if (i >= first) out << line << "\n";
  return dir + "/" + name;
}

std::string kjv() { return test::shared_dir() + "/data/kjv/kjv.txt"; }

std::string write_config(const std::string& dir, const std::string& model, const std::string& data,
                         const std::string& train) {
  const std::string path = dir + "/run.toml";
  std::ofstream(path) << "[model]\n"
                      << model << "\n[data]\n"
                      << data << "\n[train]\nlog_every = 1\nthreads = 2\nout_dir = \"" << dir << "/run\"\n"
                      << train << "\n";
  return path;
}

std::string small_text_config(const std::string& dir, const std::string& model_extra) {
  const std::string train = text_file(dir, "train.txt", kjv(), 0, 1500);
  const std::string valid = text_file(dir, "valid.txt", kjv(), 1500, 100);
  return write_config(
      dir,
      "d_model = 48\nheads = 4\nd_ff = 96\nencoder_layers = 2\ndecoder_layers = 2\nmax_len = 48\n"
      "dropout = 0.1\n" +
          model_extra,
      "train = \"" + train + "\"\nvalid = \"" + valid +
          "\"\nvocab_size = 600\nmax_tokens = 768\nvalid_samples = 1",
      "lr = 3e-3\nwarmup_steps = 10\nmax_steps = 60\neval_every = 30\ncheckpoint_every = 30");
}

std::vector<nlohmann::json> metric_lines(const std::string& run_dir, const char* key) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains(key)) out.push_back(j);
  }
  return out;
}

// Mean of the first and of the last `k` logged training losses.
std::pair<double, double> loss_ends(const std::string& run_dir, size_t k) {
  const std::vector<nlohmann::json> lines = metric_lines(run_dir, "loss");
  EXPECT_GE(lines.size(), 2 * k);
  double first = 0, last = 0;
  for (size_t i = 0; i < k; ++i) {
    first += lines[i]["loss"].get<double>() / double(k);
    last += lines[lines.size() - 1 - i]["loss"].get<double>() / double(k);
  }
  return {first, last};
}

TEST(TrainArchitectures, DecoderOnlyLanguageModelLearnsAndLoads) {
  const std::string dir = test::temp_dir("train-lm");
  const std::string cfg = small_text_config(
      dir,
      "arch = \"decoder-only\"\nnorm = \"rmsnorm\"\npositions = \"rope\"\nactivation = \"swiglu\"\n"
      "kv_heads = 2\ntie_embeddings = true");
  const CliResult r = run_cli("train --config " + cfg + " --max-steps 120");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [first, last] = loss_ends(dir + "/run", 5);
  EXPECT_GT(first, std::log(600.0) - 0.5) << "a random model starts near ln(vocab)";
  EXPECT_LT(last, first - 1.0) << "the loss did not fall: " << first << " -> " << last;
  EXPECT_NE(r.err.find("prompt: "), std::string::npos) << "no sample continuation: " << r.err;

  // The run folder is a language model for the other commands; its validation perplexity is what
  // `tfm perplexity` computes over non-overlapping windows of max_len.
  const CliResult p = run_cli("perplexity --model " + dir + "/run --file " + dir +
                              "/valid.txt --context 48 "
                              "--stride 48");
  ASSERT_EQ(p.code, 0) << p.err;
  const double ppl = nlohmann::json::parse(p.out)["perplexity"].get<double>();
  const double valid_loss = metric_lines(dir + "/run", "valid_loss").back()["valid_loss"].get<double>();
  EXPECT_NEAR(std::log(ppl), valid_loss, 1e-6);
  EXPECT_LT(ppl, 600.0 / 3) << "far below a uniform guess over the vocabulary";
  // Past the trained context: an error that names the way, then RoPE evaluates there.
  const std::string longer = "perplexity --model " + dir + "/run --file " + dir + "/valid.txt --context 96";
  const CliResult refused = run_cli(longer);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.err.find("--extrapolate"), std::string::npos) << refused.err;
  const CliResult extrapolated = run_cli(longer + " --extrapolate");
  ASSERT_EQ(extrapolated.code, 0) << extrapolated.err;
  EXPECT_GT(nlohmann::json::parse(extrapolated.out)["tokens"].get<int64_t>(), 0);
  const CliResult g = run_cli("generate --model " + dir +
                              "/run --prompt 'And God said' --max-new-tokens 8 "
                              "--greedy");
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_TRUE(g.out.starts_with("And God said")) << g.out;
  const CliResult i = run_cli("inspect --model " + dir + "/run");
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("decoder-only"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("key/value heads 2"), std::string::npos) << i.out;
}

// train.precision = "bfloat16" and "float16" (emulated, with dynamic loss scaling): the same run with
// those products learns as float32 does (losses within a few percent at every stage), and really runs in
// another precision (the losses are not identical).
TEST(TrainArchitectures, BfloatAndHalfPrecisionProductsTrackFloat32) {
  std::vector<std::vector<double>> losses;
  for (const char* precision : {"float32", "bfloat16", "float16"}) {
    const std::string dir = test::temp_dir(std::string("train-precision-") + precision);
    const std::string cfg = small_text_config(dir, "arch = \"decoder-only\"");
    std::ofstream(cfg, std::ios::app) << "precision = \"" << precision << "\"\n";
    const CliResult r = run_cli("train --config " + cfg);
    ASSERT_EQ(r.code, 0) << r.err;
    losses.emplace_back();
    for (const nlohmann::json& j : metric_lines(dir + "/run", "loss")) losses.back().push_back(j["loss"]);
  }
  for (size_t p : {1, 2}) {
    SCOPED_TRACE(p == 1 ? "bfloat16" : "float16");
    ASSERT_EQ(losses[0].size(), losses[p].size());
    ASSERT_GE(losses[0].size(), 60u);
    EXPECT_NE(losses[0], losses[p]) << "the same losses as float32 bit for bit";
    for (size_t end = 10; end <= losses[0].size(); end += 10) {
      double f32 = 0, other = 0;
      for (size_t i = end - 10; i < end; ++i) f32 += losses[0][i], other += losses[p][i];
      EXPECT_NEAR(other / f32, 1.0, 0.03) << "steps " << end - 9 << "-" << end;
    }
    EXPECT_LT(losses[p].back(), losses[p].front() - 1.0);
  }
}

// Dynamic loss scaling: started far too high (2^40), the scaled gradients overflow binary16; those steps
// are skipped (no update, no step counted) and the scale halves until they fit; then it grows again
// after every growth interval without overflow. The run still does all its steps and learns.
TEST(TrainArchitectures, HalfPrecisionLossScaleBacksOffAndGrows) {
  const std::string dir = test::temp_dir("train-loss-scale");
  const std::string cfg = small_text_config(dir, "arch = \"decoder-only\"");
  std::ofstream(cfg, std::ios::app) << "precision = \"float16\"\nloss_scale = 1099511627776\n"
                                       "loss_scale_growth_interval = 15\n";
  const CliResult r = run_cli("train --config " + cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<double> initial;  // the scales after the overflows before the first step
  for (const nlohmann::json& j : metric_lines(dir + "/run", "loss_scale_overflow"))
    if (j["step"] == 0) initial.push_back(j["loss_scale_overflow"]);
  ASSERT_GE(initial.size(), 3u) << r.err;
  for (size_t i = 0; i < initial.size(); ++i)  // each halves the scale
    EXPECT_EQ(initial[i], std::ldexp(1.0, 39 - int(i)));
  const std::vector<nlohmann::json> steps = metric_lines(dir + "/run", "loss");
  ASSERT_EQ(steps.size(), 60u) << "overflowing steps are not counted";
  EXPECT_EQ(steps.front()["loss_scale"].get<double>(), initial.back());
  double largest = 0;
  for (const nlohmann::json& j : steps) largest = std::max(largest, j["loss_scale"].get<double>());
  EXPECT_GT(largest, initial.back()) << "the scale never grew again";
  // The checkpoint keeps the scale, so a resumed run goes on with it.
  EXPECT_EQ(io::read_checkpoint_info(dir + "/run/checkpoint.safetensors").state.loss_scale,
            steps.back()["loss_scale"].get<double>());
  EXPECT_NE(r.err.find("float16 overflows skipped"), std::string::npos) << r.err;
  const auto [first, last] = loss_ends(dir + "/run", 5);
  EXPECT_LT(last, first - 1.0);
}

TEST(TrainArchitectures, EncoderOnlyMaskedLanguageModelLearns) {
  const std::string dir = test::temp_dir("train-mlm");
  const std::string cfg = small_text_config(
      dir,
      "arch = \"encoder-only\"\nnorm = \"layernorm\"\nnorm_position = \"post\"\npositions = \"learned\"\n"
      "activation = \"gelu\"\ntie_embeddings = true");
  const CliResult r = run_cli("train --config " + cfg + " --max-steps 120");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [first, last] = loss_ends(dir + "/run", 10);
  EXPECT_LT(last, first - 0.5) << "the loss did not fall: " << first << " -> " << last;
  EXPECT_NE(r.err.find("fill: "), std::string::npos) << "no masked sample: " << r.err;
  const std::vector<nlohmann::json> valid = metric_lines(dir + "/run", "valid_loss");
  ASSERT_GE(valid.size(), 2u);
  EXPECT_LT(valid.back()["valid_loss"].get<double>(), valid.front()["valid_loss"].get<double>());
}

// Mixtral's balancing loss, E * sum_e f_e P_e (f: share of routing slots, summing to top_k; P: mean router
// probability), is top_k for perfectly even routing. Weighted into the training loss it must pull the
// routing towards even: a run with a large coefficient ends with a lower balancing loss than one without.
TEST(TrainArchitectures, MixtureOfExpertsTrainsWithTheBalancingLoss) {
  auto run = [](const std::string& tag, const std::string& coef) {
    const std::string dir = test::temp_dir("train-moe-" + tag);
    const std::string cfg = small_text_config(
        dir, "arch = \"decoder-only\"\nexperts = 4\nexperts_top_k = 2\nrouter_aux_loss_coef = " + coef);
    const CliResult r = run_cli("train --config " + cfg + " --quiet");
    EXPECT_EQ(r.code, 0) << r.err;
    return dir + "/run";
  };
  const std::string without = run("off", "0.0"), with = run("on", "1.0");
  auto late_aux = [](const std::string& run_dir) {
    const std::vector<nlohmann::json> lines = metric_lines(run_dir, "loss");
    EXPECT_EQ(lines.size(), 60u);
    double sum = 0;
    for (size_t i = lines.size() - 10; i < lines.size(); ++i) {
      EXPECT_TRUE(lines[i].contains("aux_loss"));
      sum += lines[i].value("aux_loss", NAN) / 10;
    }
    return sum;
  };
  const double aux_without = late_aux(without), aux_with = late_aux(with);
  EXPECT_LT(aux_with, aux_without);
  EXPECT_NEAR(aux_with, 2.0, 0.05) << "balanced routing gives top_k";
  const auto [first, last] = loss_ends(with, 5);
  EXPECT_LT(last, first - 0.7) << "the loss did not fall: " << first << " -> " << last;
}

// Each attention variant is a [model] key that training, validation, generation and perplexity honour:
// the loss falls, the run folder reloads with its variant, and its validation perplexity is what
// `tfm perplexity` computes with the reloaded model.
struct Variant {
  const char* name;
  const char* model;  // [model] keys
  const char* shown;  // in `tfm inspect`
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.model; }

class AttentionVariant : public ::testing::TestWithParam<Variant> {};

TEST_P(AttentionVariant, TrainsAndReloads) {
  const std::string dir = test::temp_dir(std::string("train-attention-") + GetParam().name);
  const std::string cfg = small_text_config(
      dir,
      std::string("arch = \"decoder-only\"\nnorm = \"rmsnorm\"\npositions = \"rope\"\n") + GetParam().model);
  const CliResult r = run_cli("train --config " + cfg + " --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [first, last] = loss_ends(dir + "/run", 5);
  EXPECT_LT(last, first - 1.0) << "the loss did not fall: " << first << " -> " << last;
  const CliResult p = run_cli("perplexity --model " + dir + "/run --file " + dir + "/valid.txt --context 48");
  ASSERT_EQ(p.code, 0) << p.err;
  const double valid_loss = metric_lines(dir + "/run", "valid_loss").back()["valid_loss"].get<double>();
  EXPECT_NEAR(std::log(nlohmann::json::parse(p.out)["perplexity"].get<double>()), valid_loss, 1e-6);
  const CliResult g =
      run_cli("generate --model " + dir + "/run --prompt 'And God said' --max-new-tokens 40 --greedy");
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_TRUE(g.out.starts_with("And God said")) << g.out;
  const CliResult i = run_cli("inspect --model " + dir + "/run");
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find(GetParam().shown), std::string::npos) << i.out;
}

INSTANTIATE_TEST_SUITE_P(Kinds, AttentionVariant,
                         ::testing::Values(Variant{"window", "sliding_window = 8",
                                                   "softmax, sliding window 8"},
                                           Variant{"block_sparse", "sliding_window = 8\nglobal_tokens = 4",
                                                   "softmax, sliding window 8, 4 global tokens"},
                                           Variant{"linear", "attention = \"linear\"", "linear (elu + 1)"}),
                         [](const ::testing::TestParamInfo<Variant>& info) { return info.param.name; });

class TextResume : public ::testing::TestWithParam<const char*> {};

TEST_P(TextResume, IsBitIdentical) {
  const std::string arch = GetParam();
  const std::string a = test::temp_dir("resume-" + arch + "-a"), b = test::temp_dir("resume-" + arch + "-b");
  const std::string model = "arch = \"" + arch + "\"";
  ASSERT_EQ(run_cli("train --config " + small_text_config(a, model) + " --max-steps 20 --quiet").code, 0);
  ASSERT_EQ(run_cli("train --config " + small_text_config(b, model) + " --max-steps 12 --quiet").code, 0);
  const CliResult resumed = run_cli("train --resume " + b + "/run --max-steps 20 --quiet");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const std::vector<nlohmann::json> la = metric_lines(a + "/run", "loss"),
                                    lb = metric_lines(b + "/run", "loss");
  ASSERT_EQ(la.size(), 20u);
  ASSERT_EQ(lb.size(), 20u);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i]["loss"], lb[i]["loss"]) << "step " << i + 1;
  const io::SafetensorsFile fa = io::SafetensorsFile::open(a + "/run/checkpoint.safetensors");
  const io::SafetensorsFile fb = io::SafetensorsFile::open(b + "/run/checkpoint.safetensors");
  ASSERT_EQ(fa.names(), fb.names());
  for (const std::string& n : fa.names()) {
    const Tensor x = fa.view(n), y = fb.view(n);
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << "tensor " << n << " differs after resume";
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, TextResume, ::testing::Values("decoder-only", "encoder-only"),
                         [](const auto& info) { return std::string(info.param).substr(0, 7); });

// A 16-step fine-tuning of lm-kjv at learning rate `lr` on modern English (the parallel corpus's English
// side, data.text_column = 1, which lm-kjv never saw), evaluated at steps 0, 8 and 16; returns the config
// path (the corpus is dir/en-es.tsv).
std::string lm_kjv_finetune_config(const std::string& dir, const std::string& lr) {
  const std::string text =
      text_file(dir, "en-es.tsv", test::shared_dir() + "/data/bible-en-es/valid.tsv", 0, 300);
  return write_config(dir, "",
                      "train = \"" + text + "\"\nvalid = \"" + text +
                          "\"\ntext_column = 1\nvalid_max_pairs = 40\nmax_tokens = 1024\nvalid_samples = 0",
                      "lr = " + lr +
                          "\nwarmup_steps = 2\nmax_steps = 16\nlabel_smoothing = 0.0\neval_every = 8\n"
                          "checkpoint_every = 100\ninit_from = \"" +
                          test::shared_dir() + "/models/lm-kjv\"");
}

TEST(TrainArchitectures, FineTuningLmKjvLowersItsLoss) {
  const std::string dir = test::temp_dir("finetune");
  const std::string cfg = lm_kjv_finetune_config(dir, "2e-4");
  const CliResult r = run_cli("train --config " + cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("lm-kjv ([model] ignored)"), std::string::npos) << r.err;
  const auto [first, last] = loss_ends(dir + "/run", 3);
  EXPECT_LT(first, std::log(8000.0) - 1.5) << "the pretrained weights were not loaded";
  EXPECT_LT(last, first - 0.3) << "fine-tuning did not lower the loss: " << first << " -> " << last;
  // Evaluated at steps 0 (lm-kjv as it is), 8 and 16.
  const std::vector<nlohmann::json> valid = metric_lines(dir + "/run", "valid_loss");
  ASSERT_EQ(valid.size(), 3u);
  EXPECT_EQ(valid[0]["step"], 0);
  EXPECT_LT(valid[2]["valid_loss"].get<double>(), valid[0]["valid_loss"].get<double>());
  // The fine-tuned run keeps lm-kjv's tokenizer and architecture.
  const CliResult g = run_cli("generate --model " + dir +
                              "/run --prompt 'In the beginning' --greedy "
                              "--max-new-tokens 5");
  ASSERT_EQ(g.code, 0) << g.err;
}

// LoRA on lm-kjv (GPT-2 layout, whose c_attn holds q, k and v): only the adapters train (the loss falls,
// the embedding in the checkpoint is lm-kjv's to the bit, no optimizer state but the adapters'); the
// merged model scores the text as the adapted one does; the PEFT export fuses q, k, v's adapters into one
// c_attn adapter of three times the rank.
TEST(TrainArchitectures, LoraAdaptsLmKjvWithFrozenWeights) {
  const std::string dir = test::temp_dir("lora");
  const std::string cfg = lm_kjv_finetune_config(dir, "3e-3");
  const std::string text = dir + "/en-es.tsv", kjv = test::shared_dir() + "/models/lm-kjv";
  // --init-from repeats the config's train.init_from: the flag's path.
  const CliResult r =
      run_cli("train --config " + cfg + " --init-from " + kjv + " --lora r=4,alpha=8,targets=c_attn");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("LoRA r=4,alpha=8,dropout=0,targets=c_attn: "), std::string::npos) << r.err;
  const std::vector<nlohmann::json> valid = metric_lines(dir + "/run", "valid_loss");
  ASSERT_EQ(valid.size(), 3u);
  EXPECT_LT(valid[2]["valid_loss"].get<double>(), valid[0]["valid_loss"].get<double>() - 0.05);

  const io::SafetensorsFile ckpt = io::SafetensorsFile::open(dir + "/run/checkpoint.safetensors");
  const io::SafetensorsFile base = io::SafetensorsFile::open(kjv + "/model.safetensors");
  const Tensor trained = ckpt.get_f32("model.decoder.embed_tokens.weight");
  const Tensor original = base.get_f32("transformer.wte.weight");
  ASSERT_EQ(trained.numel(), original.numel());
  EXPECT_EQ(std::memcmp(trained.raw(), original.raw(), trained.nbytes()), 0) << "a frozen weight changed";
  EXPECT_FALSE(ckpt.contains("optim.decoder.embed_tokens.weight.exp_avg"));
  EXPECT_TRUE(ckpt.contains("optim.decoder.layers.0.self_attn.q_proj.lora_A.weight.exp_avg"));
  EXPECT_FALSE(ckpt.contains("model.decoder.layers.0.fc1.lora_A.weight"));

  // Merged: the same perplexity as the adapted run (plain text of the English side).
  {
    std::ifstream in(text);
    std::ofstream out(dir + "/en.txt");
    for (std::string line; std::getline(in, line);) out << line.substr(0, line.find('\t')) << "\n";
  }
  const CliResult m = run_cli("lora merge --model " + dir + "/run --out " + dir + "/merged");
  ASSERT_EQ(m.code, 0) << m.err;
  auto perplexity = [&](const std::string& model) {
    const CliResult p =
        run_cli("perplexity --model " + model + " --file " + dir + "/en.txt --context 128 --stride 128");
    EXPECT_EQ(p.code, 0) << p.err;
    return nlohmann::json::parse(p.out)["perplexity"].get<double>();
  };
  const double adapted = perplexity(dir + "/run"), merged = perplexity(dir + "/merged"),
               before = perplexity(kjv);
  EXPECT_NEAR(merged, adapted, 1e-4 * adapted);
  EXPECT_LT(adapted, before) << "the adapters did not help on the text they trained on";
  EXPECT_FALSE(io::SafetensorsFile::open(dir + "/merged/checkpoint.safetensors")
                   .contains("model.decoder.layers.0.self_attn.q_proj.lora_A.weight"));

  const CliResult e =
      run_cli("lora export --model " + dir + "/run --family gpt2 --base " + kjv + " --peft " + dir + "/peft");
  ASSERT_EQ(e.code, 0) << e.err;
  const nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/peft/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["rank_pattern"]["c_attn"], 12);
  EXPECT_EQ(config["alpha_pattern"]["c_attn"].get<double>(), 24.0);
  EXPECT_EQ(config["target_modules"], nlohmann::json::array({"c_attn"}));
  EXPECT_EQ(config["fan_in_fan_out"], true);
  const io::SafetensorsFile peft = io::SafetensorsFile::open(dir + "/peft/adapter_model.safetensors");
  EXPECT_EQ(peft.info("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape, Shape({12, 256}));
  EXPECT_EQ(peft.info("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape, Shape({768, 12}));
  // B' A' restricted to the value rows (the third chunk) is v's own B A.
  const Tensor a = peft.get_f32("base_model.model.transformer.h.1.attn.c_attn.lora_A.weight");
  const Tensor b = peft.get_f32("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight");
  const Tensor va = ckpt.get_f32("model.decoder.layers.1.self_attn.v_proj.lora_A.weight");
  const Tensor vb = ckpt.get_f32("model.decoder.layers.1.self_attn.v_proj.lora_B.weight");
  for (int64_t o : {0, 100, 255})
    for (int64_t i : {0, 7, 200}) {
      double fused = 0, own = 0;
      for (int64_t k = 0; k < 12; ++k) fused += double(b.f32()[(512 + o) * 12 + k]) * a.f32()[k * 256 + i];
      for (int64_t k = 0; k < 4; ++k) own += double(vb.f32()[o * 4 + k]) * va.f32()[k * 256 + i];
      EXPECT_NEAR(fused, own, 1e-6) << o << "," << i;
    }
}

TEST(TrainArchitectures, BadSetupsNameTheProblem) {
  const std::string dir = test::temp_dir("train-bad");
  const CliResult word =
      run_cli("train --config " + small_text_config(dir, "arch = \"encoder-only\"") + " --quiet");
  ASSERT_EQ(word.code, 0) << word.err;  // BPE gets a <mask> token
  const std::string no_mask =
      write_config(dir, "arch = \"encoder-only\"\nmax_len = 32",
                   "train = \"" + dir + "/train.txt\"\nvalid = \"\"\ntokenizer = \"word\"", "max_steps = 2");
  const CliResult m = run_cli("train --config " + no_mask + " --quiet");
  EXPECT_NE(m.code, 0);
  EXPECT_NE(m.err.find("needs a <mask> or [MASK] token"), std::string::npos) << m.err;
  std::ofstream(dir + "/empty.txt").flush();
  const std::string empty = write_config(dir, "arch = \"decoder-only\"",
                                         "train = \"" + dir + "/empty.txt\"\nvalid = \"\"", "max_steps = 2");
  const CliResult e = run_cli("train --config " + empty + " --quiet");
  EXPECT_NE(e.code, 0);
  EXPECT_NE(e.err.find("empty.txt"), std::string::npos) << e.err;
  const std::string missing =
      write_config(dir, "", "train = \"" + dir + "/train.txt\"", "init_from = \"" + dir + "/nowhere\"");
  const CliResult n = run_cli("train --config " + missing + " --quiet");
  EXPECT_NE(n.code, 0);
  EXPECT_NE(n.err.find(dir + "/nowhere: no model here"), std::string::npos) << n.err;
}

}  // namespace
}  // namespace tfm
