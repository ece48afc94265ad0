#include "train/objective.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/random.h"
#include "data/batcher.h"
#include "data/lm_stream.h"
#include "data/mlm_masking.h"
#include "data/parallel_corpus.h"
#include "data/token_file.h"
#include "infer/generate.h"
#include "infer/lm_perplexity.h"
#include "infer/translate.h"

namespace tfm::train {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kIgnore = -100;  // label of positions without a target (masked LM)

// The corpus's token file in the run folder: reused while the corpus and the tokenizers are those it was
// built from (e.g. on resume), rebuilt otherwise.
data::TokenFile tokenized_corpus(const std::string& corpus, const data::CorpusOptions& options,
                                 const std::string& cache,
                                 const std::vector<const tokenize::Tokenizer*>& tokenizers, const Say& say) {
  const auto start = std::chrono::steady_clock::now();
  data::CacheOutcome outcome;
  data::TokenFile file = data::TokenFile::open_or_build(cache, {corpus, options, tokenizers}, &outcome);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (outcome.built)
    say(fmt::format("data: tokenized {} into {} in {:.2f} s ({})", corpus, cache, seconds, outcome.reason));
  else
    say(fmt::format("data: reusing {}", cache));
  return file;
}

// The first `limit` records (0: all) of a corpus, as read for training.
std::vector<data::SentencePair> first_records(const std::string& corpus, const data::CorpusOptions& options,
                                              int64_t limit) {
  std::vector<data::SentencePair> out;
  if (corpus.empty() || limit < 0) return out;
  data::CorpusReader reader(corpus, options);
  data::SentencePair pair;
  while ((limit == 0 || int64_t(out.size()) < limit) && reader.next(pair)) out.push_back(pair);
  return out;
}

// ---- encoder-decoder: sentence pairs

class TranslationObjective final : public Objective {
 public:
  TranslationObjective(const TrainConfig& cfg, const ModelConfig& mc, const std::string& run_dir,
                       std::shared_ptr<const tokenize::Tokenizer> src,
                       std::shared_ptr<const tokenize::Tokenizer> tgt, const Say& say)
      : cfg_(cfg),
        src_(std::move(src)),
        tgt_(std::move(tgt)),
        options_(corpus_options(cfg.data, "encoder-decoder")),
        train_(tokenized_corpus(cfg.data.train, options_, (fs::path(run_dir) / "train.tokens").string(),
                                {src_.get(), tgt_.get()}, say)),
        batches_(train_.pairs(),
                 data::BatchConfig{data::FrameIds{int32_t(mc.pad_id), int32_t(mc.bos_id), int32_t(mc.eos_id)},
                                   cfg.model.max_len, cfg.data.max_tokens, uint64_t(cfg.train.seed)}) {
    const data::CorpusStats& stats = train_.info().stats;
    say(fmt::format("data: {} pairs from {} ({} lines skipped); vocab {} source, {} target", stats.records,
                    cfg.data.train, stats.skipped(), mc.src_vocab, mc.tgt_vocab));
    if (batches_.stats().skipped_too_long)
      say(fmt::format("data: skipped {} pairs longer than max_len {}", batches_.stats().skipped_too_long,
                      cfg.model.max_len));
    if (!cfg.data.valid.empty()) {
      const data::TokenFile valid =
          tokenized_corpus(cfg.data.valid, options_, (fs::path(run_dir) / "valid.tokens").string(),
                           {src_.get(), tgt_.get()}, say);
      int64_t used = valid.records();
      if (cfg.data.valid_max_pairs > 0) used = std::min(used, cfg.data.valid_max_pairs);
      valid_batches_ =
          data::in_order_batches(*valid.pairs(), used, cfg.model.max_len, cfg.data.max_tokens,
                                 data::FrameIds{int32_t(mc.pad_id), int32_t(mc.bos_id), int32_t(mc.eos_id)});
      valid_pairs_ = first_records(cfg.data.valid, options_, cfg.data.valid_max_pairs);
      samples_.assign(
          valid_pairs_.begin(),
          valid_pairs_.begin() + std::min<int64_t>(int64_t(valid_pairs_.size()), cfg.data.valid_samples));
    }
  }

  Evaluation evaluate(const Transformer& model) const override {
    Evaluation e{validation_loss(model), {}, {}};
    if (cfg_.train.eval_bleu && !valid_pairs_.empty()) {
      const TestResult s = translate_and_score(model, valid_pairs_, 1);
      e.bleu = s.bleu.score;
      e.chrf = s.chrf.score;
    }
    return e;
  }

  std::optional<TestResult> test(const Transformer& model, int64_t beams) const override {
    if (cfg_.data.test.empty()) return std::nullopt;
    return translate_and_score(model, first_records(cfg_.data.test, options_, 0), beams);
  }

  BatchInfo next_batch(const data::RowShards& shards) override {
    const data::BatchPosition where = batches_.position();
    data::ShardedBatch batch = batches_.next_shards(shards);
    shards_ = std::move(batch.shards);
    return {double(batch.tgt_tokens), double(batch.src_tokens + batch.tgt_tokens),
            fmt::format("batch {} of epoch {} (corpus lines {} ...)", where.index, where.epoch,
                        train_.line(batch.first_line))};
  }

  StepLoss forward(nn::Context& c, const Transformer& model, int64_t j) override {
    const data::Batch& batch = shards_.at(size_t(j));
    if (batch.examples.empty()) return {};
    std::vector<ag::Var> routers;
    c.router_logits = &routers;
    StepLoss s = with_aux_loss(
        model, model.loss(c, batch.src, batch.tgt_in, batch.labels, float(cfg_.train.label_smoothing)),
        routers);
    c.router_logits = nullptr;
    s.predicted = double(batch.tgt_tokens);
    return s;
  }
  data::BatchPosition position() const override { return batches_.position(); }
  std::string data_identity() const override {
    return fmt::format("{} pairs, {} tokens", train_.records(), train_.tokens());
  }
  void set_position(data::BatchPosition p) override { batches_.set_position(p); }
  int64_t skipped_too_long() const override { return batches_.stats().skipped_too_long; }

  double validation_loss(const Transformer& model) const override {
    double total = 0;
    int64_t tokens = 0;
    ag::Tape tape;
    ag::Tape::Scope scope(tape);
    ag::NoGrad no_grad(tape);
    nn::Context c{tape, false, nullptr};
    for (const data::Batch& b : valid_batches_) {
      tape.reset();
      total += model.loss(c, b.src, b.tgt_in, b.labels, 0.0f).value().item() * double(b.tgt_tokens);
      tokens += b.tgt_tokens;
    }
    return tokens ? total / double(tokens) : NAN;
  }

  std::vector<std::string> samples(const Transformer& model) const override {
    std::vector<std::string> sources;
    for (const data::SentencePair& sample : samples_) sources.push_back(sample.src);
    if (sources.empty()) return {};
    infer::TranslateOptions to;
    to.max_new_tokens = model.config().max_len;
    const std::vector<std::string> hyps = infer::translate(model, *src_, *tgt_, sources, to);
    std::vector<std::string> lines;
    for (size_t i = 0; i < hyps.size(); ++i) {
      lines.push_back("  src: " + sources[i]);
      lines.push_back("  ref: " + samples_[i].tgt);
      lines.push_back("  out: " + hyps[i]);
    }
    return lines;
  }

 private:
  // Every pair's source translated (greedy when beams is 1), scored against its target.
  TestResult translate_and_score(const Transformer& model, const std::vector<data::SentencePair>& pairs,
                                 int64_t beams) const {
    std::vector<std::string> sources, references;
    for (const data::SentencePair& p : pairs) sources.push_back(p.src), references.push_back(p.tgt);
    infer::TranslateOptions to;
    to.beams = beams;
    to.batch_size = 64;
    to.max_new_tokens = model.config().max_len;
    TestResult s;
    s.hypotheses = infer::translate(model, *src_, *tgt_, sources, to);
    s.bleu = metrics::corpus_bleu(s.hypotheses, {references});
    s.chrf = metrics::corpus_chrf(s.hypotheses, {references});
    return s;
  }

  const TrainConfig& cfg_;
  std::shared_ptr<const tokenize::Tokenizer> src_, tgt_;
  data::CorpusOptions options_;
  data::TokenFile train_;
  data::BatchIterator batches_;
  std::vector<data::Batch> shards_;  // of the batch next_batch() read
  std::vector<data::Batch> valid_batches_;
  std::vector<data::SentencePair> valid_pairs_, samples_;
};

// ---- decoder-only and encoder-only: a text stream

class TextObjective final : public Objective {
 public:
  TextObjective(const TrainConfig& cfg, const ModelConfig& mc, const std::string& run_dir,
                std::shared_ptr<const tokenize::Tokenizer> tok, const Say& say)
      : cfg_(cfg),
        tok_(std::move(tok)),
        masked_(mc.arch == Arch::EncoderOnly),
        max_len_(mc.max_len),
        options_(corpus_options(cfg.data, "decoder-only")),
        train_(tokenized_corpus(cfg.data.train, options_, (fs::path(run_dir) / "train.tokens").string(),
                                {tok_.get()}, say)),
        stream_(train_, data::LmConfig{.context = mc.max_len,
                                       .batch_size = std::max<int64_t>(1, cfg.data.max_tokens / mc.max_len),
                                       .eot_id = int32_t(mc.eos_id),
                                       .seed = uint64_t(cfg.train.seed)}) {
    const data::CorpusStats& stats = train_.info().stats;
    say(fmt::format("data: {} lines from {} ({} skipped), {} tokens, {} windows of {}; vocab {}",
                    stats.records, cfg.data.train, stats.skipped(), stream_.stream_tokens(),
                    stream_.windows(), mc.max_len, mc.tgt_vocab));
    if (masked_) {
      const tokenize::SpecialIds special = tok_->special_ids();
      masking_.probability = cfg.data.mlm_probability;
      masking_.vocab_size = mc.src_vocab;
      masking_.ignore_id = kIgnore;
      std::optional<int32_t> mask = tok_->token_to_id("<mask>");
      if (!mask) mask = tok_->token_to_id("[MASK]");
      if (!mask) fail("masked language modelling needs a <mask> or [MASK] token; the tokenizer has neither");
      masking_.mask_id = *mask;
      for (int64_t id : {int64_t(special.pad), int64_t(special.unk), int64_t(special.bos),
                         int64_t(special.eos), int64_t(*mask)})
        if (id >= 0) masking_.special_ids.push_back(id);
    }
    if (!cfg.data.valid.empty()) {
      std::vector<std::string> lines;
      for (data::SentencePair& line : first_records(cfg.data.valid, options_, cfg.data.valid_max_pairs))
        lines.push_back(std::move(line.src));
      valid_stream_ = infer::text_stream(*tok_, lines, mc.eos_id);
      for (size_t i = 0; i < lines.size() && int64_t(i) < cfg.data.valid_samples; ++i)
        sample_lines_.push_back(lines[i]);
    }
  }

  // The masked LM draws the masks of every row of the batch (it needs the batch's count of masked tokens),
  // each from (seed, epoch, window); reading all rows costs little beside a forward pass.
  BatchInfo next_batch(const data::RowShards& shards) override {
    const data::BatchPosition where = stream_.position();
    const data::RowShards read = masked_ ? data::RowShards{0, shards.of, shards.of} : shards;
    std::vector<data::LmBatch> all = stream_.next_shards(read);
    const double tokens = double(stream_.batch_size() * max_len_);
    BatchInfo info{tokens, tokens,
                   fmt::format("batch {} of epoch {} (windows {} ...)", where.index, where.epoch,
                               all[0].windows.empty() ? 0 : all[0].windows[0])};
    shards_.clear();
    if (!masked_) {
      for (data::LmBatch& b : all) shards_.push_back({b.inputs, b.labels, 0});
      return info;
    }
    info.predicted = 0;
    for (int64_t k = 0; k < shards.of; ++k) {
      data::MaskedBatch m = mask_windows(all[size_t(k)], where.epoch);
      info.predicted += double(m.chosen);
      if (k >= shards.first && k < shards.first + shards.count)
        shards_.push_back({m.inputs, m.labels, m.chosen});
    }
    return info;
  }

  StepLoss forward(nn::Context& c, const Transformer& model, int64_t j) override {
    const Shard& shard = shards_.at(size_t(j));
    if (!shard.inputs.defined() || (masked_ && shard.masked == 0)) return {};
    std::vector<ag::Var> routers;
    c.router_logits = &routers;
    const float smoothing = float(cfg_.train.label_smoothing);
    const ag::Var logits = masked_ ? model.project(c, model.encode(c, shard.inputs))
                                   : model.project(c, model.decode_only(c, shard.inputs));
    StepLoss s = with_aux_loss(model, ag::cross_entropy(logits, shard.labels, kIgnore, smoothing), routers);
    c.router_logits = nullptr;
    s.predicted = masked_ ? double(shard.masked) : double(shard.labels.numel());
    return s;
  }
  data::BatchPosition position() const override { return stream_.position(); }
  std::string data_identity() const override {
    return fmt::format("{} lines, {} tokens", train_.records(), train_.tokens());
  }
  void set_position(data::BatchPosition p) override { stream_.set_position(p); }

  // Non-overlapping windows of max_len tokens over the validation stream (the last may be shorter): a
  // decoder-only model predicts every token but each window's first (infer/lm_perplexity.h); an
  // encoder-only model the tokens that a fixed seed masks, so that evaluations compare.
  double validation_loss(const Transformer& model) const override {
    if (valid_stream_.size() < 2) return NAN;
    if (!masked_) return infer::lm_perplexity(model, valid_stream_, max_len_, max_len_).mean_nll();
    ag::Tape tape;
    ag::Tape::Scope scope(tape);
    ag::NoGrad no_grad(tape);
    nn::Context c{tape, false, nullptr};
    Rng rng(0x5eed);
    double total = 0;
    int64_t predicted = 0;
    const int64_t n = int64_t(valid_stream_.size());
    for (int64_t begin = 0; begin < n; begin += max_len_) {
      const int64_t len = std::min(max_len_, n - begin);
      Tensor ids = Tensor::empty({1, len}, DType::I64);
      std::copy(valid_stream_.begin() + begin, valid_stream_.begin() + begin + len, ids.data<int64_t>());
      tape.reset();
      const data::MaskedBatch m = data::mask_for_mlm(ids, masking_, rng);
      if (m.chosen == 0) continue;
      const ag::Var logits = model.project(c, model.encode(c, m.inputs));
      total += ag::cross_entropy(logits, m.labels, kIgnore, 0.0f).value().item() * double(m.chosen);
      predicted += m.chosen;
    }
    return predicted ? total / double(predicted) : NAN;
  }

  // Decoder-only: the greedy continuation of the first half (at most 16 tokens) of a few validation lines.
  // Encoder-only: a few validation lines with every sixth token masked and the model's guesses.
  std::vector<std::string> samples(const Transformer& model) const override {
    std::vector<std::string> out;
    for (const std::string& line : sample_lines_) {
      std::vector<int32_t> ids = tok_->encode(line);
      ids.resize(std::min(ids.size(), size_t(max_len_)));
      if (ids.size() < 2) continue;
      if (masked_) {
        out.push_back("  text: " + tok_->decode(ids));
        out.push_back("  fill: " + fill_masks(model, ids));
        continue;
      }
      const size_t half = std::min<size_t>(16, ids.size() / 2);
      const std::vector<int32_t> prompt(ids.begin(), ids.begin() + int64_t(half));
      infer::GenerateOptions go;
      go.rules.max_new_tokens = 24;
      go.rules.eos_id = model.config().eos_id;
      const std::vector<std::vector<int64_t>> generated =
          infer::generate(model, {std::vector<int64_t>(prompt.begin(), prompt.end())}, go);
      std::vector<int32_t> continuation(generated[0].begin(), generated[0].end());
      out.push_back("  prompt: " + tok_->decode(prompt));
      out.push_back("  output: " + tok_->decode(continuation));
    }
    return out;
  }

 private:
  // One shard's rows: inputs and labels (masked: the corrupted inputs and the labels at the masks).
  struct Shard {
    Tensor inputs, labels;
    int64_t masked = 0;
  };

  // Every window of `batch` masked with a generator of its own, drawn from (seed, epoch, window).
  data::MaskedBatch mask_windows(const data::LmBatch& batch, int64_t epoch) const {
    data::MaskedBatch out;
    const int64_t rows = int64_t(batch.windows.size());
    if (rows == 0) return out;
    out.inputs = Tensor::empty_persistent(batch.inputs.shape(), DType::I64);
    out.labels = Tensor::empty_persistent(batch.inputs.shape(), DType::I64);
    for (int64_t row = 0; row < rows; ++row) {
      Rng rng(mix64(uint64_t(cfg_.train.seed) ^ mix64(uint64_t(epoch) * 0x9e3779b97f4a7c15ull ^
                                                      mix64(uint64_t(batch.windows[size_t(row)])))));
      const data::MaskedBatch m =
          data::mask_for_mlm(batch.inputs.narrow(0, row, 1).contiguous(), masking_, rng);
      std::copy_n(m.inputs.data<int64_t>(), max_len_, out.inputs.data<int64_t>() + row * max_len_);
      std::copy_n(m.labels.data<int64_t>(), max_len_, out.labels.data<int64_t>() + row * max_len_);
      out.chosen += m.chosen;
    }
    return out;
  }

  // `ids` with every sixth token replaced by the model's best guess under <mask>, shown as [guess].
  std::string fill_masks(const Transformer& model, std::vector<int32_t> ids) const {
    ag::Tape tape;
    ag::Tape::Scope scope(tape);
    ag::NoGrad no_grad(tape);
    nn::Context c{tape, false, nullptr};
    Tensor input = Tensor::empty({1, int64_t(ids.size())}, DType::I64);
    for (size_t i = 0; i < ids.size(); ++i) input.data<int64_t>()[i] = i % 6 == 3 ? masking_.mask_id : ids[i];
    const Tensor logits = model.project(c, model.encode(c, input)).value();
    const int64_t vocab = logits.size(2);
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i % 6 != 3) {
        text += tok_->decode(std::vector<int32_t>{ids[i]});
        continue;
      }
      const float* z = logits.f32() + int64_t(i) * vocab;
      const int32_t best = int32_t(std::max_element(z, z + vocab) - z);
      text += "[" + tok_->decode(std::vector<int32_t>{best}) + "]";
    }
    return text;
  }

  const TrainConfig& cfg_;
  std::shared_ptr<const tokenize::Tokenizer> tok_;
  bool masked_;
  int64_t max_len_;
  data::CorpusOptions options_;
  data::TokenFile train_;
  data::LmStream stream_;
  std::vector<Shard> shards_;  // of the batch next_batch() read
  data::MlmMasking masking_;
  std::vector<int64_t> valid_stream_;
  std::vector<std::string> sample_lines_;
};

}  // namespace

StepLoss with_aux_loss(const Transformer& model, ag::Var cross_entropy,
                       const std::vector<ag::Var>& router_logits) {
  StepLoss s;
  s.cross_entropy = cross_entropy.value().item();
  s.loss = cross_entropy;
  const ModelConfig& mc = model.config();
  if (mc.experts > 0 && !router_logits.empty()) {
    // An encoder-decoder's two stacks route different token counts: one loss per stack, summed (as the
    // Switch Transformer's encoder and decoder auxiliary losses).
    const size_t split = mc.arch == Arch::EncoderDecoder ? size_t(mc.encoder_layers) : router_logits.size();
    const std::span<const ag::Var> all(router_logits);
    ag::Var aux = model.load_balancing_loss(all.first(split), Tensor());
    if (split < all.size()) aux = ag::add(aux, model.load_balancing_loss(all.subspan(split), Tensor()));
    s.aux_loss = aux.value().item();
    if (mc.router_aux_loss_coef > 0) s.loss = ag::add(cross_entropy, ag::scale(aux, mc.router_aux_loss_coef));
  }
  return s;
}

std::unique_ptr<Objective> make_objective(const TrainConfig& cfg, const ModelConfig& model_config,
                                          const std::string& run_dir,
                                          std::shared_ptr<const tokenize::Tokenizer> src,
                                          std::shared_ptr<const tokenize::Tokenizer> tgt, const Say& say) {
  if (model_config.arch == Arch::EncoderDecoder)
    return std::make_unique<TranslationObjective>(cfg, model_config, run_dir, std::move(src), std::move(tgt),
                                                  say);
  return std::make_unique<TextObjective>(cfg, model_config, run_dir, std::move(tgt), say);
}

}  // namespace tfm::train
