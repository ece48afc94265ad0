// What a training run optimises, chosen by the model's architecture, with the data it reads:
//   encoder-decoder  label-smoothed cross-entropy of each target sentence given its source, over
//                    token-budget batches of sentence pairs (data/batcher.h);
//   decoder-only     next-token cross-entropy over windows of the text stream (data/lm_stream.h: each
//                    line then the end-of-sequence token, windows of model max_len tokens);
//   encoder-only     masked-LM cross-entropy over the same windows, corrupted as BERT does
//                    (data/mlm_masking.h), at the masked positions only.
// Windows per text batch: max(1, data.max_tokens / max_len). The masked LM's masks are drawn per window
// from (seed, epoch, window), so they do not depend on how a batch is sharded. A mixture-of-experts model
// adds router_aux_loss_coef times the load-balancing loss (Mixtral), counting every token (padding included
// for sentence pairs; an encoder-decoder's encoder and decoder each have their own, summed).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "data/epoch_order.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "models/transformer.h"
#include "nn/context.h"
#include "tokenize/tokenizer.h"
#include "train/config.h"

namespace tfm::train {

// The forward pass of one shard of a batch (all of it in a single process).
struct StepLoss {
  ag::Var loss;              // what backward starts from: cross-entropy (+ weighted auxiliary loss)
  double cross_entropy = 0;  // mean over the shard's predicted tokens
  double aux_loss = 0;       // the unweighted load-balancing loss; 0 without experts
  double predicted = 0;      // tokens the cross-entropy averages over
};

// A whole batch, whatever shards of it this process reads.
struct BatchInfo {
  double predicted = 0;  // predicted tokens (what the loss of the batch averages over)
  double tokens = 0;     // tokens read, for tokens/s
  std::string where;     // where the batch came from, for error messages
};

// One evaluation on the validation corpus.
struct Evaluation {
  double loss = 0;                   // mean NLL per predicted token (NaN without a validation corpus)
  std::optional<double> bleu, chrf;  // translation with train.eval_bleu: greedy, sacreBLEU's defaults
};

// The final translation of the test corpus.
struct TestResult {
  std::vector<std::string> hypotheses;  // one per test pair, in order
  metrics::BleuScore bleu;
  metrics::ChrfScore chrf;
};

class Objective {
 public:
  virtual ~Objective() = default;
  // Reads the rows of `shards` of the next training batch (data/epoch_order.h) and advances position().
  virtual BatchInfo next_batch(const data::RowShards& shards) = 0;
  // Forward pass of shard shards.first + j of that batch, recorded on c.tape; loss undefined when the shard
  // has no rows. Data parallelism weights each shard's loss by its share of the batch's predicted tokens,
  // which makes the shards' gradients add up to the batch's.
  virtual StepLoss forward(nn::Context& c, const Transformer& model, int64_t j) = 0;
  virtual data::BatchPosition position() const = 0;
  // What the training corpus is, as read (records and token counts): ranks of a run compare it.
  virtual std::string data_identity() const = 0;
  virtual void set_position(data::BatchPosition position) = 0;
  // Pairs or windows left out of training because they exceed max_len (sentence pairs only).
  virtual int64_t skipped_too_long() const { return 0; }
  // Mean negative log-likelihood per predicted validation token, without label smoothing (exp() is the
  // perplexity); NaN without a validation corpus.
  virtual double validation_loss(const Transformer& model) const = 0;
  // validation_loss, and what else the objective measures on the validation corpus.
  virtual Evaluation evaluate(const Transformer& model) const { return {validation_loss(model), {}, {}}; }
  // Translates data.test with `beams` beams (translation with a test corpus only).
  virtual std::optional<TestResult> test(const Transformer&, int64_t /*beams*/) const { return std::nullopt; }
  // Lines showing what the model does now with a few validation examples.
  virtual std::vector<std::string> samples(const Transformer& model) const = 0;
};

using Say = std::function<void(const std::string&)>;

// The objective for `model_config`'s architecture, reading cfg.data with the run's tokenizers (token
// files cached in run_dir). Throws tfm::Error naming the corpus when it cannot give a single batch.
std::unique_ptr<Objective> make_objective(const TrainConfig& cfg, const ModelConfig& model_config,
                                          const std::string& run_dir,
                                          std::shared_ptr<const tokenize::Tokenizer> src,
                                          std::shared_ptr<const tokenize::Tokenizer> tgt, const Say& say);

// `cross_entropy` plus, for a mixture-of-experts model, router_aux_loss_coef times the load-balancing
// loss of the router logits the forward pass left in `router_logits`.
StepLoss with_aux_loss(const Transformer& model, ag::Var cross_entropy,
                       const std::vector<ag::Var>& router_logits);

}  // namespace tfm::train
