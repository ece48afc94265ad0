// The assembled Transformer: its gradient against finite differences in every norm configuration,
// attention maps for display, and clear errors for weights of another architecture.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "autograd/ops.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "models/family.h"
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

double loss_of(const Transformer& m, const Tensor& src, const Tensor& tgt, const Tensor& label) {
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad off(tape);
  nn::Context c{tape, false, nullptr};
  return m.loss(c, src, tgt, label, 0.1f).value().item();
}

class ModelGradient : public ::testing::TestWithParam<std::tuple<NormPosition, NormType>> {};

// Every parameter tensor, sampled at a few entries, against central differences of the whole loss.
TEST_P(ModelGradient, MatchesFiniteDifferences) {
  auto [position, norm] = GetParam();
  Transformer m(tiny_config(position, norm));
  m.init_weights(5);
  Tensor src = ids({3, 4, 5, 6, 2, 7, 8, 9, 0, 0}, 2), tgt = ids({1, 5, 6, 7, 1, 8, 0, 0}, 2),
         label = ids({5, 6, 7, 2, 8, 2, 0, 0}, 2);
  ag::Tape tape;
  {
    ag::Tape::Scope scope(tape);
    nn::Context c{tape, false, nullptr};
    tape.backward(m.loss(c, src, tgt, label, 0.1f));
  }
  std::mt19937 g(1);
  const float h = 1e-3f;
  for (Parameter* p : m.parameters().list()) {
    for (int k = 0; k < 4; ++k) {
      int64_t i = int64_t(g() % uint64_t(p->value.numel()));
      float* x = p->value.f32() + i;
      float saved = *x;
      *x = saved + h;
      double up = loss_of(m, src, tgt, label);
      *x = saved - h;
      double down = loss_of(m, src, tgt, label);
      *x = saved;
      double numeric = (up - down) / (2 * h), analytic = p->grad.f32()[i];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p->name << "[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Norms, ModelGradient,
                         ::testing::Combine(::testing::Values(NormPosition::Pre, NormPosition::Post),
                                            ::testing::Values(NormType::SeedLayerNorm,
                                                              NormType::LayerNorm)));

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

}  // namespace
}  // namespace tfm
