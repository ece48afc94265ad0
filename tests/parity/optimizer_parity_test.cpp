// Ten Adam and ten AdamW steps from the seed fixture's weights on its batch, against PyTorch 1.13
// (reference_train.safetensors): the loss before every step within 1e-4 relative, the final weights
// within 1e-3.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "io/safetensors.h"
#include "models/family.h"
#include "test_support.h"
#include "train/optimizer.h"

namespace tfm {
namespace {

void run_steps(bool decoupled, const std::string& prefix) {
  const std::string dir = test::fixtures_root() + "/seed_transformer";
  auto ref = io::SafetensorsFile::open(dir + "/reference.safetensors");
  auto train_ref = io::SafetensorsFile::open(dir + "/reference_train.safetensors");
  auto model = load_pretrained(dir).model;
  const Family* family = find_family(nlohmann::json{{"src_vocab", 1}, {"d", 1}, {"N", 1}, {"h", 1}});
  ASSERT_NE(family, nullptr);
  train::AdamOptions o;
  o.lr = 1e-3f;
  o.beta1 = 0.9f;
  o.beta2 = 0.98f;
  o.eps = 1e-9f;
  o.weight_decay = decoupled ? 0.01f : 0.0f;
  o.decoupled = decoupled;
  train::Adam opt(model->parameters().list(), o);
  Tensor src = ref.get_i64("src"), tgt_in = ref.get_i64("tgt_in"), label = ref.get_i64("label");
  Tensor want_losses = train_ref.get_f32(prefix + ".losses");
  ag::Tape tape;
  for (int64_t step = 0; step < want_losses.numel(); ++step) {
    tape.reset();
    ag::Tape::Scope scope(tape);
    nn::Context c{tape, false, nullptr};
    ag::Var loss = model->loss(c, src, tgt_in, label, 0.1f);
    double want = want_losses.f32()[step];
    EXPECT_NEAR(loss.value().item(), want, 1e-4 * std::fabs(want))
        << prefix << " loss before step " << step + 1;
    tape.backward(loss);
    opt.step(o.lr);
    opt.zero_grad();
  }
  for (Parameter* p : model->parameters().list()) {
    std::string name = prefix + ".final." + family->placement(p->name, model->config()).name;
    ASSERT_TRUE(train_ref.contains(name)) << name;
    EXPECT_TRUE(test::expect_close(name, p->value, train_ref.get_f32(name), 1e-3));
  }
}

TEST(OptimizerParity, AdamTenSteps) { run_steps(false, "adam"); }
TEST(OptimizerParity, AdamWTenSteps) { run_steps(true, "adamw"); }

}  // namespace
}  // namespace tfm
