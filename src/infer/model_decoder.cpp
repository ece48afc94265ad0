#include "infer/model_decoder.h"

#include <algorithm>

#include "core/error.h"

namespace tfm::infer {

namespace {

int64_t positions_limit(const Transformer& model, const DecoderLimits& limits) {
  const int64_t max_len = model.config().max_len;
  return limits.max_positions > 0 ? std::min(limits.max_positions, max_len) : max_len;
}

KvCache make_cache(const Transformer& model, int64_t rows, const DecoderLimits& limits) {
  const ModelConfig& c = model.config();
  const int64_t max_positions = positions_limit(model, limits);
  const bool track_valid = c.arch == Arch::EncoderDecoder && c.mask_decoder_padding;
  // A sliding window keeps only the window's keys (Mistral's rolling buffer cache), after the global
  // tokens if any (T5's relative buckets need contiguous positions then); padding flags keep them all.
  KvLayout layout;
  if (c.sliding_window > 0 && c.sliding_window + c.global_tokens < max_positions &&
      c.attention == AttentionKind::Softmax && !track_valid &&
      (c.global_tokens == 0 || c.positions != PositionKind::T5Relative))
    layout.ring = c.sliding_window, layout.sinks = c.global_tokens;
  // Linear attention keeps its running sums instead of keys (padding flags need the keys).
  if (c.attention == AttentionKind::Linear && !track_valid) layout.state_rows = c.attention_head_dim();
  return KvCache(model.decoder_layer_count(), c.key_value_heads() * c.attention_head_dim(), max_positions,
                 rows, limits.max_rows, track_valid, layout);
}

}  // namespace

ModelDecoder::ModelDecoder(const Transformer& model, const std::vector<std::vector<int64_t>>& sources,
                           const DecoderLimits& limits)
    : model_(model),
      prefill_chunk_(limits.prefill_chunk),
      cache_(make_cache(model, int64_t(sources.size()), limits)) {
  TFM_CHECK(model.config().arch == Arch::EncoderDecoder,
            "ModelDecoder: sources given to a model without encoder");
  encode(sources);
}

ModelDecoder::ModelDecoder(const Transformer& model, int64_t rows, const DecoderLimits& limits)
    : model_(model), prefill_chunk_(limits.prefill_chunk), cache_(make_cache(model, rows, limits)) {
  TFM_CHECK(model.config().arch == Arch::DecoderOnly, "ModelDecoder: an encoder-decoder needs its sources");
}

void ModelDecoder::encode(const std::vector<std::vector<int64_t>>& sources) {
  const ModelConfig& cfg = model_.config();
  const int64_t n = int64_t(sources.size());
  for (const auto& s : sources) {
    TFM_CHECK(!s.empty(), "ModelDecoder: empty source");
    source_len_ = std::max(source_len_, int64_t(s.size()));
  }
  // Right padding with pad_id, masked as keys: the real positions' outputs do not depend on it.
  Tensor ids = Tensor::empty_persistent({n, source_len_}, DType::I64);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t t = 0; t < source_len_; ++t)
      ids.data<int64_t>()[b * source_len_ + t] =
          t < int64_t(sources[size_t(b)].size()) ? sources[size_t(b)][size_t(t)] : cfg.pad_id;
  source_valid_ = model_.key_valid(ids).clone(/*persistent=*/true);
  {
    ag::Tape::Scope scope(tape_);
    ag::NoGrad no_grad(tape_);
    nn::Context c{tape_, false, nullptr};
    ag::Var memory = model_.encode(c, ids);
    for (int l = 0; l < model_.decoder_layer_count(); ++l) {
      auto [k, v] = model_.cross_keys_values(c, l, memory);
      cross_keys_.push_back(k.clone(/*persistent=*/true));
      cross_values_.push_back(v.clone(/*persistent=*/true));
    }
  }
  tape_.reset();
  row_source_.resize(size_t(n));
  for (int64_t s = 0; s < n; ++s) row_source_[size_t(s)] = s;
}

Tensor ModelDecoder::step(std::span<const int64_t> rows, std::span<const int64_t> tokens) {
  TFM_CHECK(rows.size() == tokens.size(), "step: {} rows, {} tokens", rows.size(), tokens.size());
  tokens_.assign(tokens.begin(), tokens.end());
  offsets_.resize(rows.size() + 1);
  for (size_t i = 0; i <= rows.size(); ++i) offsets_[i] = int64_t(i);
  return run(rows);
}

Tensor ModelDecoder::prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts) {
  return prefill_in_passes(rows, prompts, size_t(prefill_chunk_),
                           [&](std::span<const int64_t> live, auto slices) {
                             tokens_.clear(), offsets_.assign(1, 0);
                             for (std::span<const int64_t> s : slices) {
                               tokens_.insert(tokens_.end(), s.begin(), s.end());
                               offsets_.push_back(int64_t(tokens_.size()));
                             }
                             return run(live);
                           });
}

Tensor ModelDecoder::run(std::span<const int64_t> rows) {
  const ModelConfig& cfg = model_.config();
  const size_t n = rows.size();
  const int64_t total = int64_t(tokens_.size());
  TFM_CHECK(n > 0, "step: no rows");
  seen_.assign(size_t(cache_.rows()), 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t row = rows[i];
    if (row < 0 || row >= cache_.rows() || seen_[size_t(row)])
      fail("step: row {} is not one of {} distinct rows", row, cache_.rows());
    seen_[size_t(row)] = 1;
    const int64_t length = cache_.length(row) + offsets_[i + 1] - offsets_[i];
    if (length > cache_.max_positions())
      fail("a decoder row would hold {} tokens; at most {} fit (the model's or the decoder's limit)", length,
           cache_.max_positions());
  }
  for (int64_t t : tokens_)
    if (t < 0 || t >= cfg.tgt_vocab) fail("token id {} outside the vocabulary of {}", t, cfg.tgt_vocab);

  tape_.reset();
  ag::Tape::Scope scope(tape_);
  ag::NoGrad no_grad(tape_);
  nn::Context c{tape_, false, nullptr};
  Tensor ids = Tensor::empty({total}, DType::I64), positions = Tensor::empty({total}, DType::I64);
  std::copy(tokens_.begin(), tokens_.end(), ids.data<int64_t>());
  const int layers = model_.decoder_layer_count();
  keys_.resize(size_t(layers)), values_.resize(size_t(layers));
  past_.resize(n), valid_.clear();
  for (int l = 0; l < layers; ++l) keys_[size_t(l)].resize(n), values_[size_t(l)].resize(n);
  for (size_t i = 0; i < n; ++i) {
    past_[i] = cache_.length(rows[i]);
    for (int64_t t = offsets_[i]; t < offsets_[i + 1]; ++t)
      positions.data<int64_t>()[t] = past_[i] + t - offsets_[i];
    for (int l = 0; l < layers; ++l) {
      keys_[size_t(l)][i] = cache_.keys(l, rows[i]);
      values_[size_t(l)][i] = cache_.values(l, rows[i]);
    }
    // The seed's decoder masks pad tokens as keys (mask_decoder_padding): flag each new token.
    if (uint8_t* valid = cache_.key_valid(rows[i])) {
      for (int64_t t = offsets_[i]; t < offsets_[i + 1]; ++t)
        valid[past_[i] + t - offsets_[i]] = tokens_[size_t(t)] != cfg.pad_id;
      valid_.push_back(valid);
    }
  }
  self_rows_.resize(size_t(layers));
  for (int l = 0; l < layers; ++l)
    self_rows_[size_t(l)] = {.offsets = offsets_,
                             .past = past_,
                             .keys = keys_[size_t(l)],
                             .values = values_[size_t(l)],
                             .key_valid = valid_,
                             .key_len = {},
                             .ring = cache_.ring(),
                             .sinks = cache_.sinks(),
                             .state = cache_.state()};
  cross_rows_.clear();
  if (!cross_keys_.empty()) {
    cross_k_.resize(size_t(layers)), cross_v_.resize(size_t(layers));
    cross_valid_.resize(n), key_len_.assign(n, source_len_);
    const int64_t width = cross_keys_[0].size(2);
    for (size_t i = 0; i < n; ++i)
      cross_valid_[i] = source_valid_.data<uint8_t>() + row_source_[size_t(rows[i])] * source_len_;
    for (int l = 0; l < layers; ++l) {
      cross_k_[size_t(l)].resize(n), cross_v_[size_t(l)].resize(n);
      for (size_t i = 0; i < n; ++i) {
        const int64_t offset = row_source_[size_t(rows[i])] * source_len_ * width;
        cross_k_[size_t(l)][i] = cross_keys_[size_t(l)].f32() + offset;
        cross_v_[size_t(l)][i] = cross_values_[size_t(l)].f32() + offset;
      }
      cross_rows_.push_back({offsets_, {}, cross_k_[size_t(l)], cross_v_[size_t(l)], cross_valid_, key_len_});
    }
  }
  ag::Var hidden = model_.decode_cached(c, ids, positions, self_rows_, cross_rows_);
  for (size_t i = 0; i < n; ++i) cache_.append(rows[i], offsets_[i + 1] - offsets_[i]);
  ag::Var last = ag::reshape(hidden, {total, cfg.d_model});
  if (total != int64_t(n)) {  // keep each row's last token
    Tensor index = Tensor::empty({int64_t(n)}, DType::I64);
    for (size_t i = 0; i < n; ++i) index.data<int64_t>()[i] = offsets_[i + 1] - 1;
    last = ag::gather_rows(last, index);
  }
  return model_.project(c, last).value();
}

void ModelDecoder::reorder(std::span<const int64_t> parents) {
  cache_.reorder(parents);
  if (row_source_.empty()) return;
  next_row_source_.resize(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) next_row_source_[i] = row_source_[size_t(parents[i])];
  row_source_.swap(next_row_source_);
}

}  // namespace tfm::infer
