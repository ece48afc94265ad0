#include "infer/decode_batch.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/gemm.h"

namespace tfm::infer {

KvCache make_kv_cache(const Transformer& model, int64_t rows, int64_t max_positions, int64_t capacity) {
  const ModelConfig& c = model.config();
  max_positions = max_positions > 0 ? std::min(max_positions, c.max_len) : c.max_len;
  const bool track_valid = c.arch == Arch::EncoderDecoder && c.mask_decoder_padding;
  // A sliding window keeps only the window's keys (Mistral's rolling buffer cache), after the global
  // tokens if any (T5's relative buckets need contiguous positions then); padding flags keep them all.
  // Whether to is the model's choice, not the row's: every cache of a model has the same layout (a pass
  // may mix rows of several caches), and a shorter row's ring simply never wraps.
  KvLayout layout;
  if (c.sliding_window > 0 && c.sliding_window + c.global_tokens < c.max_len &&
      c.attention == AttentionKind::Softmax && !track_valid &&
      (c.global_tokens == 0 || c.positions != PositionKind::T5Relative)) {
    layout.ring = c.sliding_window, layout.sinks = c.global_tokens;
    max_positions = std::max(max_positions, layout.ring + layout.sinks);
  }
  // Linear attention keeps its running sums instead of keys (padding flags need the keys).
  if (c.attention == AttentionKind::Linear && !track_valid) layout.state_rows = c.attention_head_dim();
  return KvCache(model.decoder_layer_count(), c.key_value_heads() * c.attention_head_dim(), max_positions,
                 rows, capacity, track_valid, layout);
}

EncodedSources encode_sources(const Transformer& model, ag::Tape& tape,
                              const std::vector<std::vector<int64_t>>& sources) {
  const ModelConfig& cfg = model.config();
  EncodedSources out;
  out.count = int64_t(sources.size());
  TFM_CHECK(out.count > 0, "encode: no sources");
  for (const auto& s : sources) {
    TFM_CHECK(!s.empty(), "encode: empty source");
    out.length = std::max(out.length, int64_t(s.size()));
  }
  // Right padding with pad_id, masked as keys: the real positions' outputs do not depend on it.
  Tensor ids = Tensor::empty_persistent({out.count, out.length}, DType::I64);
  for (int64_t b = 0; b < out.count; ++b)
    for (int64_t t = 0; t < out.length; ++t)
      ids.data<int64_t>()[b * out.length + t] =
          t < int64_t(sources[size_t(b)].size()) ? sources[size_t(b)][size_t(t)] : cfg.pad_id;
  out.valid = model.key_valid(ids).clone(/*persistent=*/true);
  {
    tape.reset();
    ag::Tape::Scope scope(tape);
    ag::NoGrad no_grad(tape);
    nn::Context c{tape, false, nullptr};
    ag::Var memory = model.encode(c, ids);
    for (int l = 0; l < model.decoder_layer_count(); ++l) {
      auto [k, v] = model.cross_keys_values(c, l, memory);
      out.keys.push_back(k.clone(/*persistent=*/true));
      out.values.push_back(v.clone(/*persistent=*/true));
    }
  }
  tape.reset();
  return out;
}

void check_room_and_tokens(const RowFeed& feed, int64_t vocab) {
  const int64_t length = feed.cache->length(feed.row) + int64_t(feed.tokens.size());
  if (length > feed.cache->max_positions())
    fail("a decoder row would hold {} tokens; at most {} fit (the model's or the decoder's limit)", length,
         feed.cache->max_positions());
  for (int64_t t : feed.tokens)
    if (t < 0 || t >= vocab) fail("token id {} outside the vocabulary of {}", t, vocab);
}

Tensor DecodeBatch::run(const Transformer& model, std::span<const RowFeed> feeds) {
  const ModelConfig& cfg = model.config();
  const size_t n = feeds.size();
  TFM_CHECK(n > 0, "step: no rows");
  const KvCache& first = *feeds[0].cache;
  offsets_.assign(1, 0);
  for (size_t i = 0; i < n; ++i) {
    const RowFeed& f = feeds[i];
    TFM_CHECK(!f.tokens.empty(), "step: row {} is fed no token", f.row);
    TFM_CHECK(f.cache->ring() == first.ring() && f.cache->sinks() == first.sinks() &&
                  f.cache->state() == first.state(),
              "step: caches of different layouts in one pass");
    TFM_CHECK((f.source != nullptr) == (cfg.arch == Arch::EncoderDecoder),
              "step: an encoder-decoder row needs its source, a decoder-only row has none");
    bool repeated = false;
    for (size_t j = 0; j < i; ++j) repeated |= feeds[j].cache == f.cache && feeds[j].row == f.row;
    if (repeated || f.row < 0 || f.row >= f.cache->rows())
      fail("step: row {} is not one of {} distinct rows", f.row, f.cache->rows());
    check_room_and_tokens(f, cfg.tgt_vocab);
    offsets_.push_back(offsets_.back() + int64_t(f.tokens.size()));
  }
  const int64_t total = offsets_.back();

  tape_.reset();
  ag::Tape::Scope scope(tape_);
  ag::NoGrad no_grad(tape_);
  kernels::RowInvariantGemmScope invariant;
  nn::Context c{tape_, false, nullptr};
  Tensor ids = Tensor::empty({total}, DType::I64), positions = Tensor::empty({total}, DType::I64);
  const int layers = model.decoder_layer_count();
  keys_.resize(size_t(layers)), values_.resize(size_t(layers));
  past_.resize(n), valid_.clear();
  for (int l = 0; l < layers; ++l) keys_[size_t(l)].resize(n), values_[size_t(l)].resize(n);
  for (size_t i = 0; i < n; ++i) {
    const RowFeed& f = feeds[i];
    past_[i] = f.cache->length(f.row);
    std::copy(f.tokens.begin(), f.tokens.end(), ids.data<int64_t>() + offsets_[i]);
    for (int64_t t = 0; t < int64_t(f.tokens.size()); ++t)
      positions.data<int64_t>()[offsets_[i] + t] = past_[i] + t;
    for (int l = 0; l < layers; ++l) {
      keys_[size_t(l)][i] = f.cache->keys(l, f.row);
      values_[size_t(l)][i] = f.cache->values(l, f.row);
    }
    // The seed's decoder masks pad tokens as keys (mask_decoder_padding): flag each new token.
    if (uint8_t* valid = f.cache->key_valid(f.row)) {
      for (int64_t t = 0; t < int64_t(f.tokens.size()); ++t)
        valid[past_[i] + t] = f.tokens[size_t(t)] != cfg.pad_id;
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
                             .ring = first.ring(),
                             .sinks = first.sinks(),
                             .state = first.state()};
  cross_rows_.clear();
  if (cfg.arch == Arch::EncoderDecoder) {
    cross_k_.resize(size_t(layers)), cross_v_.resize(size_t(layers));
    cross_valid_.resize(n), key_len_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const EncodedSources& s = *feeds[i].source;
      cross_valid_[i] = s.valid.data<uint8_t>() + feeds[i].source_index * s.length;
      key_len_[i] = s.length;
    }
    for (int l = 0; l < layers; ++l) {
      cross_k_[size_t(l)].resize(n), cross_v_[size_t(l)].resize(n);
      for (size_t i = 0; i < n; ++i) {
        const EncodedSources& s = *feeds[i].source;
        const int64_t offset = feeds[i].source_index * s.length * s.keys[size_t(l)].size(2);
        cross_k_[size_t(l)][i] = s.keys[size_t(l)].f32() + offset;
        cross_v_[size_t(l)][i] = s.values[size_t(l)].f32() + offset;
      }
      cross_rows_.push_back({offsets_, {}, cross_k_[size_t(l)], cross_v_[size_t(l)], cross_valid_, key_len_});
    }
  }
  ag::Var hidden = model.decode_cached(c, ids, positions, self_rows_, cross_rows_);
  for (size_t i = 0; i < n; ++i) feeds[i].cache->append(feeds[i].row, int64_t(feeds[i].tokens.size()));
  ag::Var last = ag::reshape(hidden, {total, cfg.d_model});
  if (total != int64_t(n)) {  // keep each row's last token
    Tensor index = Tensor::empty({int64_t(n)}, DType::I64);
    for (size_t i = 0; i < n; ++i) index.data<int64_t>()[i] = offsets_[i + 1] - 1;
    last = ag::gather_rows(last, index);
  }
  return model.project(c, last).value();
}

}  // namespace tfm::infer
