// Parity with the PyTorch / Hugging Face reference fixtures. Walks every folder under $TFM_FIXTURES
// (default ../shared/fixtures) that holds a config.json and checks each one a known family maps:
// encoder/decoder outputs and logits (1e-4 relative), loss (1e-5), every parameter's gradient (1e-3),
// and the greedy decode (exact).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "autograd/ops.h"
#include "core/error.h"
#include "infer/greedy.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/family.h"
#include "nn/positions.h"
#include "test_support.h"

namespace tfm {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> fixture_folders() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(test::fixtures_root(), ec))
    if (fs::exists(e.path() / "config.json")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class FixtureParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = test::fixtures_root() + "/" + GetParam();
    auto config = nlohmann::json::parse(io::read_file(dir_ + "/config.json"));
    family_ = find_family(config);
    if (!family_) GTEST_SKIP() << GetParam() << ": no model family maps this config yet";
    model_ = load_pretrained(dir_);
    ref_ = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(dir_ + "/reference.safetensors"));
  }
  std::string dir_;
  const Family* family_ = nullptr;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<io::SafetensorsFile> ref_;
};

TEST_P(FixtureParity, ForwardLossAndGradients) {
  Tensor src = ref_->get_i64("src"), tgt_in = ref_->get_i64("tgt_in"), label = ref_->get_i64("label");
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  nn::Context c{tape, false, nullptr};
  for (Parameter* p : model_->parameters().list()) p->grad.zero_();
  ag::Var enc = model_->encode(c, src);
  ag::Var dec = model_->decode(c, enc, src, tgt_in);
  ag::Var logits = model_->project(c, dec);
  ag::Var loss = ag::cross_entropy(logits, label, model_->config().pad_id, 0.1f);
  EXPECT_TRUE(test::expect_close("encoder_output", enc.value(), ref_->get_f32("encoder_output"), 1e-4));
  EXPECT_TRUE(test::expect_close("decoder_output", dec.value(), ref_->get_f32("decoder_output"), 1e-4));
  EXPECT_TRUE(test::expect_close("logits", logits.value(), ref_->get_f32("logits"), 1e-4));
  EXPECT_TRUE(test::expect_close("loss", loss.value(), ref_->get_f32("loss"), 1e-5));
  tape.backward(loss);
  size_t checked = 0;
  for (Parameter* p : model_->parameters().list()) {
    std::string ref_name = "grad." + family_->checkpoint_name(p->name);
    ASSERT_TRUE(ref_->contains(ref_name))
        << "no reference gradient for " << p->name << " (" << ref_name << ")";
    EXPECT_TRUE(test::expect_close(ref_name, p->grad, ref_->get_f32(ref_name), 1e-3));
    ++checked;
  }
  size_t in_reference = 0;
  for (const std::string& n : ref_->names()) in_reference += n.starts_with("grad.");
  EXPECT_EQ(checked, in_reference) << "the reference has gradients for parameters the model lacks";
}

TEST_P(FixtureParity, GreedyDecode) {
  Tensor want = ref_->get_i64("greedy_ids");
  Tensor src = ref_->get_i64("src").narrow(0, 0, 1).contiguous();
  infer::GreedyOptions o;
  o.max_new_tokens = want.size(1) - 1;
  auto got = infer::greedy_decode(*model_, src, o);
  std::vector<int64_t> expect(want.data<int64_t>(), want.data<int64_t>() + want.numel());
  EXPECT_EQ(got[0], expect);
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
