#include "infer/lm_perplexity.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tfm::infer {

std::vector<int64_t> text_stream(const tokenize::Tokenizer& tokenizer, const std::vector<std::string>& lines,
                                 int64_t eot_id) {
  std::vector<int64_t> stream;
  for (const std::string& line : lines) {
    for (int32_t id : tokenizer.encode(line)) stream.push_back(id);
    stream.push_back(eot_id);
  }
  return stream;
}

metrics::PerplexityAccumulator lm_perplexity(const Transformer& model, std::span<const int64_t> stream,
                                             int64_t context, int64_t stride) {
  const ModelConfig& cfg = model.config();
  if (cfg.arch != Arch::DecoderOnly) fail("perplexity: the model is not a decoder-only language model");
  if (context < 2 || context > cfg.max_len)
    fail("perplexity: context {} must be in [2, {}] (the model's maximum length)", context, cfg.max_len);
  if (stride < 1 || stride > context)
    fail("perplexity: stride {} must be in [1, context = {}]", stride, context);
  for (int64_t id : stream)
    if (id < 0 || id >= cfg.tgt_vocab)
      fail("perplexity: token id {} outside the vocabulary of {}", id, cfg.tgt_vocab);
  metrics::PerplexityAccumulator acc;
  const int64_t n = int64_t(stream.size());
  ag::Tape tape;
  int64_t predicted_until = 1;  // the stream's first token is never predicted
  for (int64_t begin = 0; predicted_until < n; begin += stride) {
    const int64_t end = std::min(begin + context, n);
    tape.reset();
    ag::Tape::Scope scope(tape);
    ag::NoGrad no_grad(tape);
    nn::Context c{tape, false, nullptr};
    Tensor ids = Tensor::empty({1, end - begin}, DType::I64);
    std::copy(stream.begin() + begin, stream.begin() + end, ids.data<int64_t>());
    const Tensor logits = model.project(c, model.decode_only(c, ids)).value();  // [1, len, vocab]
    const int64_t vocab = logits.size(2);
    double nll = 0;
    const int64_t first = std::max(predicted_until, begin + 1);
    for (int64_t j = first; j < end; ++j) {
      const float* z = logits.f32() + (j - 1 - begin) * vocab;  // the prediction of token j
      const double top = *std::max_element(z, z + vocab);
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(z[v]) - top);
      nll += top + std::log(sum) - double(z[stream[size_t(j)]]);
    }
    acc.add(nll, end - first);
    predicted_until = end;
  }
  return acc;
}

}  // namespace tfm::infer
