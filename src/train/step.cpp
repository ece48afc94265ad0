#include "train/step.h"

#include <fmt/format.h>

#include <cmath>

#include "core/random.h"

namespace tfm::train {

StepOutcome run_step(StepSetup& s, int64_t step, float lr, bool stop_requested) {
  StepOutcome out;
  out.batch = s.objective.next_batch(s.shards);
  const int64_t local = s.shards.count;
  s.sync.begin_step(local);
  const float loss_scale = s.scaler ? float(s.scaler->scale()) : 1.0f;
  // Per shard: its cross-entropy summed over its tokens, its load-balancing loss times its tokens; then
  // this rank's stop flag.
  std::vector<double> scalars(size_t(2 * local + 1), 0.0);
  for (int64_t j = 0; j < local; ++j) {
    if (j > 0) s.sync.next_shard();
    s.tape.reset();
    ag::Tape::Scope scope(s.tape);
    kernels::GemmPrecisionScope precision(s.precision);
    Rng rng(mix64(s.rng_seed ^ mix64(uint64_t(step) * 0x9e3779b97f4a7c15ull + uint64_t(s.shards.first + j))));
    nn::Context c{s.tape, true, &rng};
    const StepLoss shard = s.objective.forward(c, s.model, j);
    if (!shard.loss.defined()) continue;  // no rows in this shard: its gradient is zero
    const double share = shard.predicted / out.batch.predicted;
    scalars[size_t(2 * j)] = shard.cross_entropy * shard.predicted;
    scalars[size_t(2 * j + 1)] = shard.aux_loss * shard.predicted;
    if (!std::isfinite(shard.loss.value().item())) continue;  // every rank sees it in the sum below
    const Tensor seed = Tensor::full({1}, float(double(loss_scale) * share)).view(shard.loss.value().shape());
    s.tape.backward(shard.loss, seed, j == local - 1 ? s.sync.hooks() : ag::BackwardHooks{});
  }
  // A rank that never gets here (it died or hangs in backward) is the one the others name.
  s.comm.set_context(fmt::format("the gradients of step {}", step));
  s.sync.finish_backward();

  // Every shard's values on every rank, in shard order (ranks hold consecutive shards).
  scalars.back() = stop_requested ? 1.0 : 0.0;
  const std::vector<double> all = s.comm.all_gather(scalars);
  std::vector<double> cross_entropy, aux;
  for (int r = 0; r < s.comm.size(); ++r) {
    const double* mine = all.data() + size_t(r) * scalars.size();
    for (int64_t j = 0; j < local; ++j) cross_entropy.push_back(mine[2 * j]), aux.push_back(mine[2 * j + 1]);
    out.stop = out.stop || mine[2 * local] != 0;
  }
  out.cross_entropy = dist::pairwise_sum(cross_entropy) / out.batch.predicted;
  out.aux_loss = dist::pairwise_sum(aux) / out.batch.predicted;
  if (!std::isfinite(out.cross_entropy)) {
    out.nonfinite = fmt::format("loss is {}", out.cross_entropy);
  } else {
    // float16: the gradients are divided by the loss scale as they are clipped.
    out.grad_norm = s.sync.clip(s.clip_norm, 1.0f / loss_scale);
    out.overflow = s.scaler && !s.scaler->update(std::isfinite(out.grad_norm));
    if (!out.overflow && !std::isfinite(out.grad_norm))
      out.nonfinite = fmt::format("the gradient norm is {}", out.grad_norm);
  }
  if (!out.overflow && out.nonfinite.empty()) {
    s.optimizer.step(lr);
    s.sync.after_update();
  }
  out.comm = s.sync.take_stats();
  return out;
}

}  // namespace tfm::train
