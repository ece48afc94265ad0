#include "infer/model_decoder.h"

#include <numeric>

#include "core/error.h"

namespace tfm::infer {

ModelDecoder::ModelDecoder(const Transformer& model, const std::vector<std::vector<int64_t>>& sources,
                           const DecoderLimits& limits)
    : model_(model),
      prefill_chunk_(limits.prefill_chunk),
      cache_(make_kv_cache(model, int64_t(sources.size()), limits.max_positions, limits.max_rows)) {
  TFM_CHECK(model.config().arch == Arch::EncoderDecoder,
            "ModelDecoder: sources given to a model without encoder");
  ag::Tape tape;
  sources_ = encode_sources(model, tape, sources);
  row_source_.resize(sources.size());
  std::iota(row_source_.begin(), row_source_.end(), int64_t(0));
}

ModelDecoder::ModelDecoder(const Transformer& model, int64_t rows, const DecoderLimits& limits)
    : model_(model),
      prefill_chunk_(limits.prefill_chunk),
      cache_(make_kv_cache(model, rows, limits.max_positions, limits.max_rows)) {
  TFM_CHECK(model.config().arch == Arch::DecoderOnly, "ModelDecoder: an encoder-decoder needs its sources");
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
  feeds_.clear();
  for (size_t i = 0; i < rows.size(); ++i) {
    RowFeed f{.cache = &cache_,
              .row = rows[i],
              .tokens = std::span<const int64_t>(tokens_).subspan(size_t(offsets_[i]),
                                                                  size_t(offsets_[i + 1] - offsets_[i]))};
    if (!row_source_.empty()) {
      if (rows[i] < 0 || rows[i] >= int64_t(row_source_.size()))
        fail("step: row {} is not one of {} rows", rows[i], row_source_.size());
      f.source = &sources_, f.source_index = row_source_[size_t(rows[i])];
    }
    feeds_.push_back(f);
  }
  return batch_.run(model_, feeds_);
}

void ModelDecoder::reorder(std::span<const int64_t> parents) {
  cache_.reorder(parents);
  if (row_source_.empty()) return;
  next_row_source_.resize(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) next_row_source_[i] = row_source_[size_t(parents[i])];
  row_source_.swap(next_row_source_);
}

}  // namespace tfm::infer
