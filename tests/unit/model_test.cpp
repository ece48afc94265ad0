// The assembled Transformer: its gradient against finite differences in every norm configuration and in
// the single-stack (decoder-only, encoder-only) shapes, the causal mask, attention maps for display,
// ModelConfig's JSON, family loading (dtypes, Conv1D, fused q/k/v) and clear errors for weights of
// another architecture.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "autograd/ops.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model_shapes.h"
#include "models/family.h"
#include "models/lora_merge.h"
#include "models/quantize.h"
#include "nn/positions.h"
#include "test_support.h"

namespace tfm {
namespace {

ModelConfig tiny_config(NormPosition position, NormType norm) {
  ModelConfig c;
  c.src_vocab = 11;
  c.tgt_vocab = 13;
  c.d_model = 8;
  c.heads = 2;
  c.d_ff = 12;
  c.encoder_layers = c.decoder_layers = 2;
  c.max_len = 8;
  c.dropout = 0;
  c.norm_position = position;
  c.norm = norm;
  c.final_norm = position == NormPosition::Pre;
  return c;
}

Tensor ids(std::initializer_list<int64_t> v, int64_t rows) {
  Tensor t = Tensor::empty_persistent({rows, int64_t(v.size()) / rows}, DType::I64);
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

// Backpropagates `loss` once, then checks 4 entries (drawn with `seed`) of every trainable parameter's
// gradient against central differences of the loss recomputed without gradients.
void expect_gradients_match_finite_differences(Transformer& m,
                                               const std::function<ag::Var(nn::Context&)>& loss,
                                               uint32_t seed) {
  auto loss_value = [&] {
    ag::Tape tape;
    ag::Tape::Scope scope(tape);
    ag::NoGrad off(tape);
    nn::Context c{tape, false, nullptr};
    return double(loss(c).value().item());
  };
  ag::Tape tape;
  {
    ag::Tape::Scope scope(tape);
    nn::Context c{tape, false, nullptr};
    tape.backward(loss(c));
  }
  std::mt19937 g(seed);
  const float h = 1e-3f;
  for (Parameter* p : m.parameters().list()) {
    if (!p->trainable) continue;
    for (int k = 0; k < 4; ++k) {
      int64_t i = int64_t(g() % uint64_t(p->value.numel()));
      float* x = p->value.f32() + i;
      float saved = *x;
      *x = saved + h;
      double up = loss_value();
      *x = saved - h;
      double down = loss_value();
      *x = saved;
      double numeric = (up - down) / (2 * h), analytic = p->grad.f32()[i];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p->name << "[" << i << "]";
    }
  }
}

class ModelGradient : public ::testing::TestWithParam<std::tuple<NormPosition, NormType>> {};

// Every parameter tensor, sampled at a few entries, against central differences of the whole loss.
TEST_P(ModelGradient, MatchesFiniteDifferences) {
  auto [position, norm] = GetParam();
  Transformer m(tiny_config(position, norm));
  m.init_weights(5);
  Tensor src = ids({3, 4, 5, 6, 2, 7, 8, 9, 0, 0}, 2), tgt = ids({1, 5, 6, 7, 1, 8, 0, 0}, 2),
         label = ids({5, 6, 7, 2, 8, 2, 0, 0}, 2);
  expect_gradients_match_finite_differences(
      m, [&](nn::Context& c) { return m.loss(c, src, tgt, label, 0.1f); }, 1);
}

INSTANTIATE_TEST_SUITE_P(Norms, ModelGradient,
                         ::testing::Combine(::testing::Values(NormPosition::Pre, NormPosition::Post),
                                            ::testing::Values(NormType::SeedLayerNorm, NormType::LayerNorm)));

// Decoder logits of an encoder-decoder batch, without gradients.
Tensor logits(Transformer& m, const Tensor& src, const Tensor& tgt) {
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad off(tape);
  nn::Context c{tape, false, nullptr};
  return m.project(c, m.decode(c, m.encode(c, src), src, tgt)).value().clone(true);
}

double max_difference(const Tensor& a, const Tensor& b) {
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(double(a.f32()[i]) - b.f32()[i]));
  return d;
}

// Stands in for trained adapters: every B gets U(-0.5, 0.5) entries (B = 0 would make them no-ops).
void randomize_lora_b(const Transformer& m, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (const nn::LoraAdapter& a : m.lora_adapters())
    for (int64_t i = 0; i < a.b->value.numel(); ++i) a.b->value.f32()[i] = u(g);
}

// B's initial zeros make an adapted model the base model exactly; with B trained (here random) the
// adapters' gradients (A and B of every adapted projection) match finite differences of the loss, and
// the frozen weights get neither gradient nor gradient buffer.
TEST(Lora, AdapterGradientsMatchFiniteDifferences) {
  Transformer m(tiny_config(NormPosition::Pre, NormType::LayerNorm));
  m.init_weights(5);
  Tensor src = ids({3, 4, 5, 6, 2, 7, 8, 9, 0, 0}, 2), tgt = ids({1, 5, 6, 7, 1, 8, 0, 0}, 2),
         label = ids({5, 6, 7, 2, 8, 2, 0, 0}, 2);
  const Tensor base = logits(m, src, tgt);
  m.add_lora(nn::parse_lora_spec("r=2,alpha=4,targets=q,v,fc1"), 3);
  EXPECT_EQ(max_difference(logits(m, src, tgt), base), 0.0) << "B = 0 leaves the model unchanged";
  // Encoder: 2 layers x (q, v, fc1); decoder: 2 x (self q, v, cross q, v, fc1).
  ASSERT_EQ(m.lora_adapters().size(), 16u);
  for (const nn::LoraAdapter& a : m.lora_adapters()) EXPECT_EQ(a.scale, 2.0f);
  randomize_lora_b(m, 9);
  m.freeze_all_but_lora();
  EXPECT_FALSE(m.parameters().at("decoder.layers.0.self_attn.q_proj.weight").trainable);
  EXPECT_FALSE(m.parameters().at("decoder.layers.0.self_attn.q_proj.weight").grad.defined());
  EXPECT_TRUE(m.parameters().at("decoder.layers.0.self_attn.q_proj.lora_A.weight").trainable);
  EXPECT_EQ(m.parameters().find("decoder.layers.0.self_attn.k_proj.lora_A.weight"), nullptr);
  expect_gradients_match_finite_differences(
      m, [&](nn::Context& c) { return m.loss(c, src, tgt, label, 0.1f); }, 4);
}

// Merging folds (alpha / r) B A into each adapted weight: the merged model (no adapters) gives the adapted
// model's logits within 1e-5, and its untouched parameters are copies.
TEST(Lora, MergedModelGivesTheAdaptedLogits) {
  Transformer m(tiny_config(NormPosition::Post, NormType::LayerNorm));
  m.init_weights(6);
  m.add_lora(nn::parse_lora_spec("r=3,alpha=8,targets=q,k,v,o,fc1,fc2"), 4);
  randomize_lora_b(m, 2);
  Tensor src = ids({3, 4, 5, 6, 2, 7, 8, 9, 0, 0}, 2), tgt = ids({1, 5, 6, 7, 1, 8, 0, 0}, 2);
  std::unique_ptr<Transformer> merged = merge_lora(m);
  EXPECT_TRUE(merged->lora_adapters().empty());
  EXPECT_EQ(merged->config().lora, "");
  EXPECT_EQ(merged->parameters().find("encoder.layers.0.self_attn.q_proj.lora_A.weight"), nullptr);
  const Tensor adapted = logits(m, src, tgt), folded = logits(*merged, src, tgt);
  EXPECT_LT(max_difference(adapted, folded), 1e-5);
  const Tensor& w = m.parameters().at("encoder.layers.1.self_attn.q_proj.weight").value;
  EXPECT_GT(max_difference(w, merged->parameters().at("encoder.layers.1.self_attn.q_proj.weight").value),
            1e-3)
      << "the adapted weight changed";
  EXPECT_EQ(max_difference(m.parameters().at("decoder.embed_tokens.weight").value,
                           merged->parameters().at("decoder.embed_tokens.weight").value),
            0.0);
}

// With INT8 weights (inference) an adapter's update is added to the integer product: the logits match the
// float model with the adapters merged into the dequantized weights, up to the on-the-fly quantization of
// the activations, and differ from the same quantized model without its update.
TEST(Lora, QuantizedWeightsKeepTheAdapters) {
  Transformer m(tiny_config(NormPosition::Pre, NormType::LayerNorm));
  m.init_weights(7);
  m.add_lora(nn::parse_lora_spec("r=2,alpha=8,targets=q,v,fc1"), 5);
  randomize_lora_b(m, 3);
  quantize_model(m, kernels::WeightFormat::Int8);
  const Tensor src = ids({3, 4, 5, 6, 2, 7, 8, 9, 0, 0}, 2), tgt = ids({1, 5, 6, 7, 1, 8, 0, 0}, 2);
  const Tensor integer = logits(m, src, tgt), folded = logits(*merge_lora(m), src, tgt);
  const double tolerance = 0.02;
  EXPECT_LT(max_difference(integer, folded), tolerance);
  for (const nn::LoraAdapter& a : m.lora_adapters()) a.b->value.fill_(0.0f);
  EXPECT_GT(max_difference(integer, logits(m, src, tgt)), 10 * tolerance) << "the update was not added";
}

// A model config that records adapters rebuilds them (a checkpoint of a LoRA run reloads as one).
TEST(Lora, ConfigRebuildsTheAdapters) {
  Transformer m(tiny_config(NormPosition::Pre, NormType::LayerNorm));
  m.add_lora(nn::parse_lora_spec("r=2,alpha=4,targets=v"), 1);
  const ModelConfig again = model_config_from_json(to_json(m.config()), "test");
  EXPECT_EQ(again.lora, "r=2,alpha=4,dropout=0,targets=v");
  Transformer rebuilt(again);
  EXPECT_EQ(rebuilt.lora_adapters().size(), m.lora_adapters().size());
  EXPECT_NE(rebuilt.parameters().find("decoder.layers.1.encoder_attn.v_proj.lora_B.weight"), nullptr);
  EXPECT_THROW(rebuilt.add_lora(nn::parse_lora_spec("r=2,targets=q"), 1), Error);
}

TEST(Lora, SpecParsesAndNamesItsErrors) {
  const nn::LoraSpec s = nn::parse_lora_spec("r=8,alpha=16,dropout=0.05,targets=q,v,down_proj");
  EXPECT_EQ(s.rank, 8);
  EXPECT_EQ(s.alpha, 16);
  EXPECT_FLOAT_EQ(float(s.dropout), 0.05f);
  EXPECT_EQ(s.targets, (std::vector<std::string>{"q", "v", "down_proj"}));
  EXPECT_EQ(nn::parse_lora_spec(nn::to_string(s)), s);
  EXPECT_EQ(nn::lora_target_projections("c_attn"), (std::vector<std::string>{"q_proj", "k_proj", "v_proj"}));
  for (const char* bad :
       {"r=0,targets=q", "alpha=4,targets=q", "r=4", "r=4,targets=zz", "r=4,foo=1,targets=q", "r=x,targets=q",
        "r=4,dropout=1,targets=q", "r=4,,targets=q"})
    EXPECT_THROW(nn::parse_lora_spec(bad), Error) << bad;
  try {
    nn::parse_lora_spec("r=4,targets=q,zz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'zz'"), std::string::npos) << e.what();
  }
}

TEST(Model, KeepsAttentionMapsOnRequest) {
  Transformer m(tiny_config(NormPosition::Pre, NormType::SeedLayerNorm));
  m.init_weights(2);
  m.set_keep_attention(true);
  Tensor src = ids({3, 4, 5, 0}, 1), tgt = ids({1, 5, 6}, 1);
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad off(tape);
  nn::Context c{tape, false, nullptr};
  m.decode(c, m.encode(c, src), src, tgt);
  const AttentionMaps& maps = m.attention_maps();
  ASSERT_EQ(maps.encoder_self.size(), 2u);
  const Tensor& cross = maps.decoder_cross[1];  // [1, heads, 3, 4]
  ASSERT_EQ(cross.shape(), Shape({1, 2, 3, 4}));
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 3; ++i) {
      double row = 0;
      for (int j = 0; j < 4; ++j) row += cross.at({0, h, i, j});
      EXPECT_NEAR(row, 1.0, 1e-5);
      EXPECT_EQ(cross.at({0, h, i, 3}), 0.0) << "the padded source position gets no attention";
    }
  const Tensor& self = maps.decoder_self[0];  // causal: no weight on later positions
  EXPECT_EQ(self.at({0, 0, 0, 1}), 0.0);
  EXPECT_EQ(self.at({0, 1, 1, 2}), 0.0);
  EXPECT_GT(self.at({0, 1, 2, 0}), 0.0);
}

TEST(Model, CheckpointOfAnotherArchitectureNamesTheTensors) {
  std::string dir = test::temp_dir("arch");
  Transformer a(tiny_config(NormPosition::Pre, NormType::SeedLayerNorm));
  io::CheckpointInfo info;
  info.model_config = to_json(a.config());
  io::save_checkpoint(dir + "/a.safetensors", a.parameters(), nullptr, info);
  ModelConfig other = tiny_config(NormPosition::Pre, NormType::SeedLayerNorm);
  other.d_ff = 16;
  other.decoder_layers = 1;
  Transformer b(other);
  try {
    io::load_checkpoint_weights(dir + "/a.safetensors", b.parameters(), nullptr);
    FAIL() << "loaded a checkpoint of another architecture";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("a.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'model.encoder.layers.0.fc1.weight': shape [12, 8] expected [16, 8]"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("unexpected tensor 'model.decoder.layers.1.fc1.bias'"), std::string::npos) << msg;
  }
}

TEST(Model, PretrainedShapeMismatchNamesTensorAndShapes) {
  namespace fs = std::filesystem;
  std::string dir = test::temp_dir("pretrained");
  std::string fixture = test::fixtures_root() + "/seed_transformer";
  fs::copy_file(fixture + "/model.safetensors", dir + "/model.safetensors");
  auto config = nlohmann::json::parse(io::read_file(fixture + "/config.json"));
  config["d_ff"] = 96;
  io::write_file_atomic(dir + "/config.json", config.dump());
  try {
    load_pretrained(dir);
    FAIL() << "loaded weights of the wrong shape";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("feed_forward_block.linear_1.weight': shape [128, 64] expected [96, 64]"),
              std::string::npos)
        << msg;
  }
  config["d_ff"] = 128;
  config.erase("h");
  io::write_file_atomic(dir + "/config.json", config.dump());
  EXPECT_THROW(load_pretrained(dir), Error) << "a config no family understands";
}

// A GPT-2-shaped model with the ops that exist today: ReLU, LayerNorm, learned positions, pre-norm,
// a final norm and the output tied to the token table.
ModelConfig tiny_decoder_only() {
  ModelConfig c = test::gpt2_layout(test::sized(Arch::DecoderOnly, {.vocab = 13,
                                                                    .d_model = 8,
                                                                    .heads = 2,
                                                                    .d_ff = 12,
                                                                    .encoder_layers = 0,
                                                                    .decoder_layers = 2,
                                                                    .max_len = 8}));
  c.embedding_scale = 1.0f;
  c.mask_decoder_padding = false;
  return c;
}

// A BERT-shaped model: post-norm, embedding LayerNorm, token types, learned positions, MLM head.
ModelConfig tiny_encoder_only() {
  ModelConfig c = tiny_decoder_only();
  c.arch = Arch::EncoderOnly;
  c.encoder_layers = 2;
  c.decoder_layers = 0;
  c.norm_position = NormPosition::Post;
  c.final_norm = false;
  c.embedding_norm = true;
  c.token_types = 2;
  c.lm_head_transform = true;
  c.output_bias = true;
  return c;
}

// A Llama/Mistral-shaped model: RMSNorm, RoPE, grouped-query attention, SwiGLU, a sliding window.
ModelConfig tiny_llama() {
  ModelConfig c = test::llama_layout(tiny_decoder_only(), /*kv_heads=*/1, /*window=*/3);
  c.additive_mask = true;
  return c;
}

// Mixtral-shaped: the Llama block with 3 experts, top 2, and the load-balancing loss.
ModelConfig tiny_mixtral() {
  ModelConfig c = tiny_llama();
  c.sliding_window = 0;
  c.experts = 3;
  c.experts_top_k = 2;
  c.router_aux_loss_coef = 0.1f;
  return c;
}

// BLOOM-shaped: ALiBi, an embedding LayerNorm, GELU (tanh).
ModelConfig tiny_bloom() {
  ModelConfig c = test::bloom_layout(tiny_decoder_only());
  c.activation = Activation::GeluTanh;
  c.additive_mask = true;
  return c;
}

ag::Var single_stack_loss(nn::Context& c, const Transformer& m, const Tensor& in, const Tensor& label) {
  std::vector<ag::Var> router_logits;
  c.router_logits = &router_logits;
  ag::Var hidden = m.config().arch == Arch::DecoderOnly
                       ? m.decode_only(c, in)
                       : m.encode(c, in, {}, ids({0, 0, 1, 1, 0, 1, 1, 0}, 2));
  ag::Var loss = ag::cross_entropy(m.project(c, hidden), label, -100, 0.0f);
  if (router_logits.empty()) return loss;
  return ag::add(loss, ag::scale(m.load_balancing_loss(router_logits, {}), m.config().router_aux_loss_coef));
}

struct NamedConfig {
  const char* name;
  ModelConfig (*make)();
};

class SingleStackGradient : public ::testing::TestWithParam<NamedConfig> {};

TEST_P(SingleStackGradient, MatchesFiniteDifferences) {
  Transformer m(GetParam().make());
  m.init_weights(7);
  Tensor in = ids({3, 4, 5, 6, 7, 8, 9, 10}, 2), label = ids({4, 5, 6, -100, 8, -100, 10, 11}, 2);
  expect_gradients_match_finite_differences(
      m, [&](nn::Context& c) { return single_stack_loss(c, m, in, label); }, 3);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SingleStackGradient,
                         ::testing::Values(NamedConfig{"DecoderOnly", tiny_decoder_only},
                                           NamedConfig{"EncoderOnly", tiny_encoder_only},
                                           NamedConfig{"Llama", tiny_llama},
                                           NamedConfig{"Mixtral", tiny_mixtral},
                                           NamedConfig{"Bloom", tiny_bloom}),
                         [](const auto& info) { return std::string(info.param.name); });

Tensor logits_of(const Transformer& m, const Tensor& in) {
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad off(tape);
  nn::Context c{tape, false, nullptr};
  return m.project(c, m.decode_only(c, in)).value().clone(/*persistent=*/true);
}

TEST(Model, DecoderOnlyLogitsNeverSeeLaterTokens) {
  Transformer m(tiny_decoder_only());
  m.init_weights(11);
  Tensor a = ids({3, 4, 5, 6, 7, 8}, 1);
  Tensor before = logits_of(m, a);
  for (int64_t changed = 1; changed < 6; ++changed) {
    Tensor b = a.clone(/*persistent=*/true);
    b.data<int64_t>()[changed] = 12;
    Tensor after = logits_of(m, b);
    for (int64_t t = 0; t < 6; ++t) {
      double diff = 0;
      for (int64_t v = 0; v < 13; ++v)
        diff = std::max(diff, std::fabs(after.at({0, t, v}) - before.at({0, t, v})));
      if (t < changed) {
        EXPECT_EQ(diff, 0.0) << "position " << t << " changed with token " << changed;
      } else if (t == changed) {
        EXPECT_GT(diff, 0.0) << "position " << t << " ignores its own token";
      }
    }
  }
}

TEST(ModelConfig, JsonRoundTripsEveryField) {
  ModelConfig c = tiny_encoder_only();
  c.kv_heads = 1;
  c.head_dim = 6;
  c.rope_theta = 5e5f;
  c.positions = PositionKind::RoPE;
  c.activation = Activation::SwiGLU;
  c.norm = NormType::RMSNorm;
  c.norm_bias = false;
  c.sliding_window = 4;
  c.global_tokens = 2;
  c.experts = 4;
  c.experts_top_k = 2;
  c.router_aux_loss_coef = 0.02f;
  c.forced_eos = c.forbid_pad = c.freeze_pad_embedding = c.additive_mask = true;
  nlohmann::json j = to_json(c);
  EXPECT_EQ(j["positions"], "rope");
  EXPECT_EQ(j["activation"], "swiglu");
  EXPECT_EQ(to_json(model_config_from_json(j, "test")), j);
  c.attention = AttentionKind::Linear;
  c.sliding_window = c.global_tokens = 0;
  j = to_json(c);
  EXPECT_EQ(j["attention"], "linear");
  EXPECT_EQ(to_json(model_config_from_json(j, "test")), j);
}

TEST(ModelConfig, LinearAttentionRefusesWhatItHasNoScoresFor) {
  ModelConfig c = tiny_decoder_only();
  c.attention = AttentionKind::Linear;
  c.sliding_window = 4;
  EXPECT_NE(test::error_of([&] { c.validate(); }).find("linear attention has no sliding window"),
            std::string::npos);
  c.sliding_window = 0;
  c.positions = PositionKind::ALiBi;
  EXPECT_NE(test::error_of([&] { c.validate(); }).find("no scores for ALiBi"), std::string::npos);
}

// Evaluating past the trained length: the first max_len positions' logits are unchanged (a causal model,
// the same table rows), later positions get the formula's rows; learned positions refuse.
TEST(Model, ExtendPositionsKeepsTheTrainedPrefix) {
  for (PositionKind kind : {PositionKind::SinusoidalInterleaved, PositionKind::SinusoidalHalf,
                            PositionKind::RoPE, PositionKind::ALiBi}) {
    ModelConfig c = tiny_decoder_only();
    c.positions = kind;
    Transformer m(c);
    m.init_weights(12);
    const Tensor short_ids = ids({3, 4, 5, 6, 7, 8, 9, 10}, 1);
    const Tensor before = logits_of(m, short_ids);
    m.extend_positions(16);
    EXPECT_EQ(m.config().max_len, 16);
    const Tensor long_ids = ids({3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3, 4, 5, 6, 7, 8}, 1);
    const Tensor after = logits_of(m, long_ids);
    EXPECT_TRUE(test::expect_close("first 8 positions", after.narrow(1, 0, 8), before, 1e-5));
  }
  ModelConfig c = tiny_decoder_only();  // GPT-2's learned positions
  Transformer m(c);
  EXPECT_NE(test::error_of([&] { m.extend_positions(9); }).find("learned positions cover 8 positions"),
            std::string::npos);
}

// A checkpoint of tfm's first format (issues 2 and 3: the seed only, `scale_embeddings` as a flag; this is
// the default run's config verbatim) loads as the seed: sqrt(d_model) embedding scale, every newer key at
// its default. Keys unknown to both formats are still errors.
TEST(ModelConfig, FirstFormatCheckpointsStillLoad) {
  const nlohmann::json first = nlohmann::json::parse(R"({"activation": "relu", "arch": "encoder-decoder",
      "attention_bias": false, "bos_id": 1, "d_ff": 1024, "d_model": 256, "decoder_layers": 3,
      "dropout": 0.1, "encoder_layers": 3, "eos_id": 2, "ffn_bias": true, "final_norm": true, "heads": 4,
      "max_len": 128, "norm": "seed", "norm_eps": 1e-06, "norm_position": "pre", "output_bias": true,
      "pad_id": 0, "positions": "sinusoidal", "scale_embeddings": true, "share_embeddings": false,
      "src_vocab": 8000, "tgt_vocab": 8000, "tie_output": false})");
  const ModelConfig c = model_config_from_json(first, "checkpoint");
  ModelConfig want;
  want.d_model = 256;
  want.heads = 4;
  want.d_ff = 1024;
  want.encoder_layers = want.decoder_layers = 3;
  want.max_len = 128;
  want.src_vocab = want.tgt_vocab = 8000;
  want.embedding_scale = 16.0f;
  EXPECT_EQ(to_json(c), to_json(want));
  EXPECT_TRUE(c.mask_decoder_padding);
  EXPECT_FALSE(c.additive_mask);

  nlohmann::json unscaled = first;
  unscaled["scale_embeddings"] = false;
  EXPECT_EQ(model_config_from_json(unscaled, "checkpoint").embedding_scale, 1.0f);
  nlohmann::json more_dropout = first;
  more_dropout["dropout"] = 0.3;
  const ModelConfig d = model_config_from_json(more_dropout, "checkpoint");
  EXPECT_EQ(d.attention_dropout, 0.3f);
  EXPECT_EQ(d.activation_dropout, 0.3f);
  nlohmann::json typo = first;
  typo["head"] = 4;
  EXPECT_NE(test::error_of([&] { model_config_from_json(typo, "checkpoint"); }).find("unknown key 'head'"),
            std::string::npos);
}

// Checkpoints of the second format (issue 4, before attention and activation dropout were separate
// keys) used `dropout` for both.
TEST(ModelConfig, SecondFormatDropoutCoversAttentionAndActivation) {
  ModelConfig c = tiny_decoder_only();
  c.dropout = 0.25f;
  nlohmann::json j = to_json(c);
  j.erase("attention_dropout");
  j.erase("activation_dropout");
  const ModelConfig loaded = model_config_from_json(j, "checkpoint");
  EXPECT_EQ(loaded.attention_dropout, 0.25f);
  EXPECT_EQ(loaded.activation_dropout, 0.25f);
}

TEST(ModelConfig, ErrorsNameTheField) {
  nlohmann::json j = to_json(tiny_decoder_only());
  auto bad = [&](const std::string& key, nlohmann::json value) {
    nlohmann::json k = j;
    if (value.is_null())
      k.erase(key);
    else
      k[key] = value;
    return test::error_of([&] { model_config_from_json(k, "cfg.json"); });
  };
  EXPECT_NE(bad("heads", nullptr).find("missing key 'heads'"), std::string::npos);
  EXPECT_NE(bad("positions", "wavelet").find("'positions' has unsupported value 'wavelet'"),
            std::string::npos);
  EXPECT_NE(bad("kv_heads", 3).find("kv_heads"), std::string::npos);
  j["experts"] = 2;
  EXPECT_NE(bad("experts_top_k", 3).find("experts_top_k: must be in [1, experts]"), std::string::npos);
  std::string unknown = test::error_of([&] {
    nlohmann::json k = j;
    k["colour"] = 1;
    model_config_from_json(k, "cfg.json");
  });
  EXPECT_NE(unknown.find("cfg.json"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown key 'colour'"), std::string::npos) << unknown;
}

// Marian's layout for d = 4: [sin(p), sin(p / 100), cos(p), cos(p / 100)] (10000^(2/4) = 100).
TEST(Positions, MarianHalfSplitLayout) {
  Tensor t = nn::sinusoidal_half_table(5, 4);
  for (int p = 0; p < 5; ++p) {
    EXPECT_FLOAT_EQ(float(t.at({p, 0})), std::sin(float(p)));
    EXPECT_FLOAT_EQ(float(t.at({p, 1})), float(std::sin(p / 100.0)));
    EXPECT_FLOAT_EQ(float(t.at({p, 2})), std::cos(float(p)));
    EXPECT_FLOAT_EQ(float(t.at({p, 3})), float(std::cos(p / 100.0)));
  }
}

// A family fixture folder: the model load_pretrained builds from it, and its checkpoint.
struct FamilyFixture {
  Pretrained loaded;
  io::SafetensorsFile checkpoint;
};

FamilyFixture load_fixture(const std::string& name) {
  const std::string dir = test::fixtures_root() + "/" + name;
  return {load_pretrained(dir), io::SafetensorsFile::open(dir + "/model.safetensors")};
}

// The weight or bias (`kind`) of self-attention projection `projection` ("q_proj", ...) in decoder `layer`.
Parameter& self_attention(Transformer& model, int layer, const std::string& projection, const char* kind) {
  return model.parameters().at("decoder.layers." + std::to_string(layer) + ".self_attn." + projection + "." +
                               kind);
}

// GPT-2 stores Conv1D weights (in, out) with q, k, v side by side in c_attn: the loaded projections are
// the transposed column blocks.
TEST(Families, Gpt2Conv1DAndFusedQkvAreSplitAndTransposed) {
  auto [p, file] = load_fixture("gpt2");
  Tensor c_attn = file.get_f32("transformer.h.1.attn.c_attn.weight");  // [64, 192]
  Tensor c_attn_bias = file.get_f32("transformer.h.1.attn.c_attn.bias");
  const char* names[] = {"q_proj", "k_proj", "v_proj"};
  for (int part = 0; part < 3; ++part) {
    Parameter& w = self_attention(*p.model, 1, names[part], "weight");
    Parameter& b = self_attention(*p.model, 1, names[part], "bias");
    for (int64_t out : {0, 17, 63})
      for (int64_t in : {0, 5, 63}) EXPECT_EQ(w.value.at({out, in}), c_attn.at({in, part * 64 + out}));
    EXPECT_EQ(b.value.at({9}), c_attn_bias.at({part * 64 + 9}));
  }
  Tensor fc = file.get_f32("transformer.h.0.mlp.c_fc.weight");  // [64, 256] (in, out)
  EXPECT_EQ(p.model->parameters().at("decoder.layers.0.fc1.weight").value.at({200, 3}), fc.at({3, 200}));
  EXPECT_EQ(p.model->parameters().find("lm_head.weight"), nullptr) << "tied to transformer.wte";
}

// BLOOM's query_key_value rows are [heads, 3, head_dim] (q, k, v of head 0, then of head 1, ...): the
// loaded projections are those per-head blocks, and the export puts every row back where it was.
TEST(Families, BloomFusedQkvIsInterleavedPerHead) {
  auto [p, file] = load_fixture("bloom_alibi");
  Tensor qkv = file.get_f32("transformer.h.1.self_attention.query_key_value.weight");  // [192, 64]
  Tensor qkv_bias = file.get_f32("transformer.h.1.self_attention.query_key_value.bias");
  const int64_t head_dim = 16;
  const char* names[] = {"q_proj", "k_proj", "v_proj"};
  for (int part = 0; part < 3; ++part) {
    Parameter& w = self_attention(*p.model, 1, names[part], "weight");
    Parameter& b = self_attention(*p.model, 1, names[part], "bias");
    for (int64_t head : {0, 2, 3})
      for (int64_t d : {0, 7, 15}) {
        int64_t row = head * head_dim + d, fused = (head * 3 + part) * head_dim + d;
        EXPECT_EQ(w.value.at({row, 5}), qkv.at({fused, 5})) << names[part] << " row " << row;
        EXPECT_EQ(b.value.at({row}), qkv_bias.at({fused})) << names[part] << " row " << row;
      }
  }
  for (const auto& [name, t] : checkpoint_tensors(*p.model, *p.family, false))
    EXPECT_TRUE(test::expect_close(name, t, file.get_f32(name), 0.0));
}

// Weights saved in a family's layout as float16 / bfloat16 load back as those values in float32; the
// export (checkpoint_tensors) is the exact inverse of the load, Conv1D and fused q/k/v included.
TEST(Families, HalfPrecisionWeightsRoundTripThroughTheGpt2Layout) {
  const Family* gpt2 = find_family(nlohmann::json{{"model_type", "gpt2"}});
  ASSERT_NE(gpt2, nullptr);
  Transformer a(tiny_decoder_only());
  a.init_weights(4);
  for (DType dtype : {DType::F16, DType::BF16}) {
    std::vector<std::pair<std::string, Tensor>> tensors = checkpoint_tensors(a, *gpt2, false);
    for (auto& [name, t] : tensors) t = t.to(dtype, /*persistent=*/true);
    std::string path = test::temp_dir("half") + "/model.safetensors";
    io::save_safetensors(path, tensors);
    Transformer b(tiny_decoder_only());
    load_family_weights(b, path, *gpt2);
    for (Parameter* p : b.parameters().list()) {
      Tensor want = a.parameters().at(p->name).value.to(dtype, true).to(DType::F32, true);
      EXPECT_TRUE(test::expect_close(p->name, p->value, want, 0.0)) << dtype_name(dtype);
    }
  }
}

TEST(Families, MissingAndUnexpectedWeightsAreAllListed) {
  const Family* gpt2 = find_family(nlohmann::json{{"model_type", "gpt2"}});
  Transformer a(tiny_decoder_only());
  std::vector<std::pair<std::string, Tensor>> kept;
  for (auto& [name, t] : checkpoint_tensors(a, *gpt2, false))
    if (name != "transformer.ln_f.bias" && name != "transformer.h.1.attn.c_attn.weight")
      kept.emplace_back(name, t);
  kept.emplace_back("transformer.h.9.mlp.c_fc.weight", Tensor::zeros_persistent({2, 2}));
  kept.emplace_back("score.weight", Tensor::zeros_persistent({2, 2}));
  std::string path = test::temp_dir("missing") + "/model.safetensors";
  io::save_safetensors(path, kept);
  std::string msg = test::error_of([&] { load_family_weights(a, path, *gpt2); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing ['transformer.h.1.attn.c_attn.weight', 'transformer.ln_f.bias']"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("unexpected ['transformer.h.9.mlp.c_fc.weight', 'score.weight']"), std::string::npos)
      << msg;
}

TEST(Families, ConfigErrorsNameTheModelTypeOrTheField) {
  std::string msg = test::error_of([] { find_family(nlohmann::json{{"model_type", "perceiver"}}); });
  EXPECT_NE(msg.find("unknown model_type 'perceiver'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("marian"), std::string::npos) << "lists the supported types: " << msg;

  std::string dir = test::temp_dir("marian");
  auto config = nlohmann::json::parse(io::read_file(test::fixtures_root() + "/marian/config.json"));
  config.erase("d_model");
  io::write_file_atomic(dir + "/config.json", config.dump());
  msg = test::error_of([&] { load_pretrained(dir); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing field 'd_model'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tfm
