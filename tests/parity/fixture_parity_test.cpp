// Parity with the PyTorch / Hugging Face reference fixtures. Walks every folder under $TFM_FIXTURES
// (default ../shared/fixtures) that holds a config.json and checks each one a known family maps:
// hidden states and logits (1e-4 relative; decoder-only: where attention_mask is 1), loss (1e-5),
// the MoE load-balancing loss (1e-5), every trainable parameter's gradient in the checkpoint's own layout
// (1e-3), the first row without any mask (logits_nomask), and the greedy decode (ids equal wherever the
// reference's greedy_margin > 1e-3). A folder no family maps is a failure.
//
// Reference values that are NaN cannot be compared. llama, mistral_swa and bloom_alibi have them in the
// whole left-padded row 1, so in their loss and every gradient: those models were evaluated in float64
// while HF's eager attention for Llama/Mistral/BLOOM takes the softmax in float32, where the float64
// finfo.min of the mask becomes -inf; a padding query that sees no key then gets softmax(all -inf) = NaN,
// and 0 * NaN spreads it to every later position of the row. (GPT-2 takes its softmax in float64 and
// Mixtral's reference is float32: both finite.) Rows of NaN logits are left out and named; a NaN loss
// skips the loss and gradient checks of that fixture, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "autograd/ops.h"
#include "core/error.h"
#include "infer/beam_search.h"
#include "infer/generate.h"
#include "infer/model_decoder.h"
#include "infer/sampling.h"
#include "infer/translate.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/family.h"
#include "nn/positions.h"
#include "test_support.h"

namespace tfm {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kIgnore = -100;  // Hugging Face's ignored label

std::vector<std::string> fixture_folders() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(test::fixtures_root(), ec))
    if (fs::exists(e.path() / "config.json")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// U8 copy of an int64 0/1 mask.
Tensor u8_mask(const Tensor& m) {
  Tensor out = Tensor::empty_persistent(m.shape(), DType::U8);
  for (int64_t i = 0; i < m.numel(); ++i) out.data<uint8_t>()[i] = uint8_t(m.data<int64_t>()[i] != 0);
  return out;
}

// Hugging Face's shift_tokens_right: decoder inputs = [start, labels[:-1]] with -100 replaced by pad.
Tensor shift_right(const Tensor& labels, int64_t start, int64_t pad) {
  Tensor out = Tensor::empty_persistent(labels.shape(), DType::I64);
  const int64_t rows = labels.size(0), len = labels.size(1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < len; ++t) {
      int64_t v = t == 0 ? start : labels.data<int64_t>()[r * len + t - 1];
      out.data<int64_t>()[r * len + t] = v == kIgnore ? pad : v;
    }
  return out;
}

// Causal-LM labels as HF computes the loss: position t predicts labels[t + 1]; the last predicts nothing.
Tensor shift_left(const Tensor& labels) {
  Tensor out = Tensor::empty_persistent(labels.shape(), DType::I64);
  const int64_t rows = labels.size(0), len = labels.size(1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < len; ++t)
      out.data<int64_t>()[r * len + t] = t + 1 < len ? labels.data<int64_t>()[r * len + t + 1] : kIgnore;
  return out;
}

// Rows of [batch, len, width] where mask [batch, len] is 1, as [n, width] (padded positions dropped).
Tensor rows_where(const Tensor& x, const Tensor& mask) {
  const int64_t width = x.size(-1);
  int64_t n = 0;
  for (int64_t i = 0; i < mask.numel(); ++i) n += mask.data<int64_t>()[i] != 0;
  Tensor out = Tensor::empty_persistent({n, width});
  Tensor xc = x.contiguous();
  int64_t k = 0;
  for (int64_t i = 0; i < mask.numel(); ++i)
    if (mask.data<int64_t>()[i] != 0) std::copy_n(xc.f32() + i * width, width, out.f32() + width * k++);
  return out;
}

double l2(const Tensor& t) {
  Tensor c = t.contiguous();
  double s = 0;
  for (int64_t i = 0; i < c.numel(); ++i) s += double(c.f32()[i]) * c.f32()[i];
  return std::sqrt(s);
}

// Gradients within 1e-3 relative. A gradient that is zero in exact arithmetic (the key bias: softmax
// ignores a shift shared by all scores) is float64 noise in the reference (~1e-17) and float32 noise
// here (~1e-8), so a relative error means nothing there: it must be tiny in absolute terms instead.
::testing::AssertionResult gradient_close(const std::string& name, const Tensor& got, const Tensor& want) {
  if (l2(want) < 1e-12) {
    if (l2(got) < 1e-6) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << name << ": reference is zero, got norm " << l2(got);
  }
  return test::expect_close(name, got, want, 1e-3);
}

class FixtureParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = test::fixtures_root() + "/" + GetParam();
    auto config = nlohmann::json::parse(io::read_file(dir_ + "/config.json"));
    family_ = find_family(config);  // an unknown model_type throws, naming it
    ASSERT_NE(family_, nullptr) << GetParam() << ": no model family maps this config.json";
    model_ = load_pretrained(dir_).model;
    ref_ = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(dir_ + "/reference.safetensors"));
  }

  // Runs the model on the reference inputs: the loss, with every reference output it computed checked.
  ag::Var forward(nn::Context& c) {
    const ModelConfig& cfg = model_->config();
    auto check = [&](const char* name, ag::Var got) {
      EXPECT_TRUE(test::expect_close(name, got.value(), ref_->get_f32(name), 1e-4));
      report(name, test::relative_error(got.value(), ref_->get_f32(name)));
    };
    if (ref_->contains("src")) {  // the seed's own names and loss
      Tensor src = ref_->get_i64("src"), tgt_in = ref_->get_i64("tgt_in");
      ag::Var enc = model_->encode(c, src);
      ag::Var dec = model_->decode(c, enc, src, tgt_in);
      ag::Var logits = model_->project(c, dec);
      check("encoder_output", enc);
      check("decoder_output", dec);
      check("logits", logits);
      return ag::cross_entropy(logits, ref_->get_i64("label"), cfg.pad_id, 0.1f);
    }
    Tensor ids = ref_->get_i64("input_ids"), mask = ref_->get_i64("attention_mask");
    Tensor labels = ref_->get_i64("labels");
    ag::Var logits;
    switch (cfg.arch) {
      case Arch::EncoderDecoder: {
        ag::Var enc = model_->encode(c, ids, u8_mask(mask));
        check("encoder_last_hidden_state", enc);
        logits = model_->project(c, model_->decode(c, enc, ids, shift_right(labels, cfg.bos_id, cfg.pad_id)));
        check("logits", logits);
        break;
      }
      case Arch::DecoderOnly:
        logits = model_->project(c, model_->decode_only(c, ids, u8_mask(mask)));
        check_real_rows(logits, mask);
        labels = shift_left(labels);
        break;
      case Arch::EncoderOnly: {
        Tensor types = ref_->contains("token_type_ids") ? ref_->get_i64("token_type_ids") : Tensor();
        logits = model_->project(c, model_->encode(c, ids, u8_mask(mask), types));
        check_real_rows(logits, mask);
        break;
      }
    }
    ag::Var loss = ag::cross_entropy(logits, labels, kIgnore, 0.0f);
    if (router_logits_.empty()) return loss;
    // Mixtral: loss + router_aux_loss_coef * load-balancing loss over the real tokens.
    ag::Var aux = model_->load_balancing_loss(router_logits_, u8_mask(mask));
    EXPECT_TRUE(test::expect_close("aux_loss", aux.value(), ref_->get_f32("aux_loss"), 1e-5));
    report("aux_loss", test::relative_error(aux.value(), ref_->get_f32("aux_loss")));
    return ag::add(loss, ag::scale(aux, cfg.router_aux_loss_coef));
  }

  // Logits of a single-stack model, compared only where attention_mask is 1, in the batch rows whose
  // reference is free of NaN (see the top of this file).
  void check_real_rows(ag::Var logits, const Tensor& mask) {
    Tensor want_all = ref_->get_f32("logits");
    Tensor compared = Tensor::empty_persistent(mask.shape(), DType::I64);
    const int64_t rows = mask.size(0), len = mask.size(1), per_row = want_all.numel() / rows;
    for (int64_t r = 0; r < rows; ++r) {
      const float* w = want_all.f32() + r * per_row;
      bool finite = std::all_of(w, w + per_row, [](float x) { return std::isfinite(x); });
      if (!finite)
        std::printf("  %s: reference logits of row %lld are NaN: row left out\n", GetParam().c_str(),
                    (long long)r);
      for (int64_t t = 0; t < len; ++t)
        compared.data<int64_t>()[r * len + t] = finite ? mask.data<int64_t>()[r * len + t] : 0;
    }
    Tensor got = rows_where(logits.value(), compared), want = rows_where(want_all, compared);
    ASSERT_GT(want.numel(), 0) << "no reference logits to compare";
    EXPECT_TRUE(test::expect_close("logits where attention_mask = 1", got, want, 1e-4));
    report("logits", test::relative_error(got, want));
  }

  // The reference gradient of checkpoint tensor `name`. transformers 5 keeps Mixtral's experts fused in
  // memory (mlp.experts.gate_up_proj [experts, 2 * d_ff, d_model] with w1 rows then w3 rows,
  // mlp.experts.down_proj [experts, d_model, d_ff], mlp.gate for the router), so the fixture's gradients
  // have those names while its checkpoint keeps one tensor per expert: the matching slice is taken here.
  // `used` collects the reference tensors read.
  Tensor reference_gradient(const std::string& name, std::set<std::string>& used) {
    static const std::regex expert(
        R"(^(model\.layers\.\d+)\.block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight$)");
    static const std::regex router(R"(^(model\.layers\.\d+)\.block_sparse_moe\.gate\.weight$)");
    std::smatch m;
    std::string direct = "grad." + name;
    if (ref_->contains(direct) || !std::regex_match(name, m, expert)) {
      std::string fused =
          std::regex_match(name, m, router) ? "grad." + m[1].str() + ".mlp.gate.weight" : direct;
      used.insert(fused);
      return ref_->contains(fused) ? ref_->get_f32(fused) : Tensor();
    }
    const int64_t e = std::stoll(m[2].str());
    const bool down = m[3] == "w2";
    std::string fused =
        "grad." + m[1].str() + (down ? ".mlp.experts.down_proj" : ".mlp.experts.gate_up_proj");
    used.insert(fused);
    if (!ref_->contains(fused)) return Tensor();
    Tensor all = ref_->get_f32(fused).select(0, e);
    if (down) return all.contiguous();
    const int64_t d_ff = all.size(0) / 2;
    return all.narrow(0, m[3] == "w1" ? 0 : d_ff, d_ff).contiguous();
  }

  // Measured relative errors, printed as a test property (visible with --gtest_output and in the log).
  void report(const std::string& what, double rel) {
    RecordProperty(what, std::to_string(rel));
    std::printf("  %s %s: relative error %.3g\n", GetParam().c_str(), what.c_str(), rel);
  }

  std::string dir_;
  const Family* family_ = nullptr;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<io::SafetensorsFile> ref_;
  std::vector<ag::Var> router_logits_;  // filled by an MoE forward pass
};

TEST_P(FixtureParity, ForwardLossAndGradients) {
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  nn::Context c{tape, false, nullptr};
  c.router_logits = &router_logits_;
  for (Parameter* p : model_->parameters().list()) p->grad.zero_();
  ag::Var loss;
  loss = forward(c);
  if (!std::isfinite(ref_->get_f32("loss").f32()[0]))
    GTEST_SKIP() << GetParam() << ": the reference loss and gradients are NaN (a float64 fixture with a "
                 << "padding query that sees no key, see the top of this file): logits checked, loss and "
                 << "gradients not comparable";
  EXPECT_TRUE(test::expect_close("loss", loss.value(), ref_->get_f32("loss"), 1e-5));
  report("loss", test::relative_error(loss.value(), ref_->get_f32("loss")));
  tape.backward(loss);
  std::set<std::string> trained;  // checkpoint tensors holding a trainable parameter
  for (Parameter* p : model_->parameters().list())
    if (p->trainable) trained.insert(family_->placement(p->name, model_->config()).name);
  std::set<std::string> used;  // reference gradients compared
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, grad] : checkpoint_tensors(*model_, *family_, /*gradients=*/true)) {
    if (!trained.count(name)) continue;
    Tensor want = reference_gradient(name, used);
    ASSERT_TRUE(want.defined()) << "no reference gradient for " << name;
    EXPECT_TRUE(gradient_close("grad." + name, grad, want));
    if (l2(want) >= 1e-12 && test::relative_error(grad, want) > worst) {
      worst = test::relative_error(grad, want);
      worst_name = "grad." + name;
    }
  }
  report("worst gradient (" + worst_name + ")", worst);
  for (const std::string& n : ref_->names())
    EXPECT_TRUE(!n.starts_with("grad.") || used.count(n)) << "reference gradient " << n << " of no parameter";
}

TEST_P(FixtureParity, GreedyDecode) {
  const Arch arch = model_->config().arch;
  if (arch == Arch::EncoderOnly) GTEST_SKIP() << "an encoder-only model does not generate";
  Tensor want = ref_->get_i64("greedy_ids");
  std::vector<int64_t>
      given;  // leading tokens of greedy_ids that were given: the decoder start, or the prompt
  std::vector<std::vector<int64_t>> got;
  if (arch == Arch::DecoderOnly) {
    Tensor prompt = ref_->get_i64("greedy_prompt");
    given.assign(prompt.data<int64_t>(), prompt.data<int64_t>() + prompt.numel());
    infer::GenerateOptions o;
    o.rules.max_new_tokens = want.size(1) - int64_t(given.size());  // HF greedy ran to the length limit
    got = infer::generate(*model_, {given}, o);
  } else {
    Tensor src = ref_->get_i64(ref_->contains("src") ? "src" : "input_ids").narrow(0, 0, 1).contiguous();
    std::vector<int64_t> source(src.data<int64_t>(), src.data<int64_t>() + src.numel());
    given = {model_->config().bos_id};
    infer::ModelDecoder decoder(*model_, {source}, {});
    got =
        infer::greedy_search(decoder, {given}, infer::translation_rules(model_->config(), want.size(1) - 1));
  }
  got[0].insert(got[0].begin(), given.begin(), given.end());
  std::vector<int64_t> expect(want.data<int64_t>(), want.data<int64_t>() + want.numel());
  if (!ref_->contains("greedy_margin")) {
    EXPECT_EQ(got[0], expect);
    return;
  }
  // Generated token i was chosen with margin[i]; a near-tie may flip, and everything after it with it.
  Tensor margin = ref_->get_f32("greedy_margin");
  ASSERT_EQ(got[0].size(), expect.size());
  const size_t n = given.size();
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(got[0][i], expect[i]) << "given token " << i;
  for (size_t i = 0; i + n < expect.size(); ++i) {
    if (margin.f32()[i] <= 1e-3f) break;
    EXPECT_EQ(got[0][i + n], expect[i + n]) << "greedy token " << i + n;
  }
}

// logits_nomask: the first input row again, run with no attention mask at all.
TEST_P(FixtureParity, FirstRowWithoutMask) {
  if (!ref_->contains("logits_nomask")) GTEST_SKIP() << GetParam() << " has no logits_nomask";
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context c{tape, false, nullptr};
  ASSERT_EQ(model_->config().arch, Arch::DecoderOnly) << "logits_nomask is read for decoder-only models";
  Tensor row = ref_->get_i64("input_ids").narrow(0, 0, 1).contiguous();
  Tensor got = model_->project(c, model_->decode_only(c, row)).value(), want = ref_->get_f32("logits_nomask");
  EXPECT_TRUE(test::expect_close("logits_nomask", got, want, 1e-4));
  report("logits_nomask", test::relative_error(got, want));
}

// An empty or missing fixtures folder would otherwise run no parity test at all.
TEST(Fixtures, RootHoldsModelFolders) {
  EXPECT_FALSE(fixture_folders().empty())
      << "no model folder (with a config.json) under " << test::fixtures_root();
}

// meta.json: num_beams 4, length_penalty 1, early_stopping True; beam_score is HF's sequences_scores.
TEST_P(FixtureParity, BeamSearch) {
  if (!ref_->contains("beam_ids")) GTEST_SKIP() << GetParam() << ": no beam search reference";
  Tensor want_ids = ref_->get_i64("beam_ids");  // [1, len], starting with the decoder start
  Tensor src = ref_->get_i64(ref_->contains("src") ? "src" : "input_ids").narrow(0, 0, 1).contiguous();
  std::vector<int64_t> source(src.data<int64_t>(), src.data<int64_t>() + src.numel());
  const infer::GenerationRules rules = infer::translation_rules(model_->config(), want_ids.size(1) - 1);
  infer::BeamOptions beam;
  beam.num_beams = 4;
  beam.early_stopping = infer::EarlyStopping::kWhenFull;
  infer::ModelDecoder decoder(*model_, {source}, {.max_positions = 0, .max_rows = 4});
  const std::vector<infer::Hypothesis> got =
      infer::beam_search(decoder, {{model_->config().bos_id}}, rules, beam);
  const std::vector<int64_t> want(want_ids.data<int64_t>() + 1, want_ids.data<int64_t>() + want_ids.numel());
  EXPECT_EQ(got[0].tokens, want);
  EXPECT_NEAR(got[0].score, ref_->get_f32("beam_score").item(), 1e-4);
}

// The seed saves its sinusoidal table as a buffer: tfm's own table must equal it.
TEST(SeedPositions, TableEqualsTheSeedBuffer) {
  auto file = io::SafetensorsFile::open(test::fixtures_root() + "/seed_transformer/model.safetensors");
  Tensor pe = file.get_f32("src_pos.pe");  // [1, len, d]
  Tensor mine = nn::sinusoidal_table(pe.size(1), pe.size(2));
  EXPECT_TRUE(test::expect_close("pe", mine, pe.view({pe.size(1), pe.size(2)}), 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureParity, ::testing::ValuesIn(fixture_folders()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tfm
