#include "serve/completion.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/random.h"
#include "infer/sampling.h"

namespace tfm::serve {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD: a token cut inside a character

// log_softmax of the raw logits at `token`, and the `top` best tokens with theirs.
TokenLogprob logprob_of(std::span<const float> logits, int64_t token, int64_t top) {
  const double log_z = infer::log_sum_exp(logits);
  TokenLogprob out{.token = token, .logprob = float(logits[size_t(token)] - log_z), .top = {}};
  for (int64_t id : infer::top_indices(logits, size_t(top)))
    out.top.emplace_back(id, float(logits[size_t(id)] - log_z));
  return out;
}

// One row's text as it grows: what is final, where a stop string cut it.
struct RowText {
  std::string text;    // detokenized so far (cut at a stop string once one appeared)
  size_t emitted = 0;  // bytes of `text` handed to the callback
  size_t logprobs_emitted = 0;
  bool stopped = false;  // a stop string appeared
};

// The generated text of `ids` after `prompt_text`: decoding prompt and continuation together and dropping
// the prompt's part keeps what a tokenizer does at the boundary (SentencePiece's leading space).
std::string continuation(const tokenize::Tokenizer& tok, const std::vector<int32_t>& all,
                         const std::string& prompt_text, size_t prompt_len) {
  const std::string full = tok.decode(all, /*skip_special=*/true);
  if (full.starts_with(prompt_text)) return full.substr(prompt_text.size());
  return tok.decode(std::span<const int32_t>(all).subspan(prompt_len), true);
}

// Bytes of `text` past `from` that are final: not a trailing U+FFFD (the next token may complete the
// character) and not a tail that could still grow into a stop string.
size_t final_length(const std::string& text, size_t from, const std::vector<std::string>& stop, bool done) {
  if (done) return text.size();
  size_t end = text.size();
  while (end >= from + kReplacement.size() && std::string_view(text).substr(0, end).ends_with(kReplacement))
    end -= kReplacement.size();
  size_t hold = 0;
  for (const std::string& s : stop)
    for (size_t k = std::min(s.size() - 1, end); k > hold; --k)
      if (std::string_view(text).substr(end - k, k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
  return std::max(from, end - hold);
}

}  // namespace

std::unique_ptr<Sequence> admit(Scheduler& scheduler, const CompletionSpec& spec,
                                const std::function<bool()>& cancelled) {
  const int64_t vocab = scheduler.model().config().tgt_vocab;
  TFM_CHECK(!spec.prompt.empty() && spec.n > 0, "complete: prompt of {} tokens, n {}", spec.prompt.size(),
            spec.n);
  infer::validate_prompts({spec.prompt}, vocab);
  infer::validate(spec.rules, vocab);
  if (spec.sampling) infer::validate(*spec.sampling);
  // A row holds its prompt and every generated token but the last.
  return scheduler.admit(spec.n, int64_t(spec.prompt.size()) + spec.rules.max_new_tokens - 1, {}, cancelled);
}

std::vector<CompletionChoice> complete(Sequence& sequence, const tokenize::Tokenizer& tok,
                                       const CompletionSpec& spec, const TextCallback& on_text) {
  Sequence* seq = &sequence;
  const int64_t vocab = seq->vocab_size();
  const int64_t max_new = spec.rules.max_new_tokens;
  const std::vector<int32_t> prompt32(spec.prompt.begin(), spec.prompt.end());
  const std::string prompt_text = tok.decode(prompt32, true);
  const size_t n = size_t(spec.n);
  std::vector<CompletionChoice> choices(n);
  std::vector<RowText> texts(n);
  std::vector<std::vector<int64_t>> sequences(n, spec.prompt);  // what the rules see
  std::vector<std::vector<int32_t>> all(n, prompt32);
  std::vector<std::map<int64_t, int64_t>> counts(n);  // generated token -> occurrences

  // Every row starts from the same prompt: prefill row 0, then copy its cache.
  Tensor logits_tensor =
      seq->prefill(std::vector<int64_t>{0}, std::vector<std::vector<int64_t>>{spec.prompt});
  std::vector<int64_t> live(n), live_logit_row(n, 0);  // row k of the logits is live[k]'s (first: all 0's)
  int64_t logit_rows = 1;
  for (size_t i = 0; i < n; ++i) live[i] = int64_t(i);
  if (n > 1) seq->reorder(std::vector<int64_t>(n, 0));
  std::vector<float> row(static_cast<size_t>(vocab));
  while (true) {
    const float* logits = infer::checked_logits(logits_tensor, logit_rows, vocab);
    std::vector<int64_t> next_live, next_tokens;
    for (size_t k = 0; k < live.size(); ++k) {
      const size_t i = size_t(live[k]);
      const float* raw = logits + live_logit_row[k] * vocab;
      const int64_t done = int64_t(choices[i].tokens.size());
      row.assign(raw, raw + vocab);
      for (const auto& [t, c] : counts[i])
        row[size_t(t)] -= spec.frequency_penalty * float(c) + (c > 0 ? spec.presence_penalty : 0.0f);
      infer::apply_rules(row, sequences[i], done, spec.rules);
      int64_t token;
      if (spec.sampling) {
        infer::apply_warpers(row, *spec.sampling);
        token = infer::draw_token(row, uniform_at(spec.sampling->seed, uint64_t(i) << 32 | uint64_t(done)));
      } else {
        token = infer::argmax(row);
      }
      if (row[size_t(token)] == -std::numeric_limits<float>::infinity())
        fail("row {}, token {}: every token is masked by the generation rules", i, done);
      CompletionChoice& choice = choices[i];
      choice.tokens.push_back(token);
      sequences[i].push_back(token);
      ++counts[i][token];
      if (spec.logprobs)
        choice.logprobs.push_back(
            logprob_of(std::span<const float>(raw, size_t(vocab)), token, *spec.logprobs));
      const bool eos = spec.rules.eos_id && token == *spec.rules.eos_id;
      all[i].push_back(int32_t(token));
      RowText& rt = texts[i];
      rt.text = continuation(tok, all[i], prompt_text, prompt32.size());
      for (const std::string& s : spec.stop) {
        const size_t at = rt.text.find(s, rt.emitted > s.size() ? rt.emitted - s.size() : 0);
        if (at != std::string::npos) rt.text.resize(at), rt.stopped = true;
      }
      const bool finished = eos || rt.stopped || done + 1 == max_new;
      if (finished) choice.finish_reason = eos || rt.stopped ? "stop" : "length";
      const size_t end = final_length(rt.text, rt.emitted, spec.stop, finished);
      if (on_text) {
        const std::span<const TokenLogprob> lps =
            std::span<const TokenLogprob>(choice.logprobs).subspan(rt.logprobs_emitted);
        if (!on_text(int64_t(i), rt.text.substr(rt.emitted, end - rt.emitted), lps))
          throw Cancelled("the client went away");
        rt.emitted = end, rt.logprobs_emitted = choice.logprobs.size();
      }
      if (!finished) next_live.push_back(int64_t(i)), next_tokens.push_back(token);
    }
    if (next_live.empty()) break;
    live = std::move(next_live);
    live_logit_row.resize(live.size());
    for (size_t k = 0; k < live.size(); ++k) live_logit_row[k] = int64_t(k);
    logits_tensor = seq->step(live, next_tokens);
    logit_rows = int64_t(live.size());
  }
  for (size_t i = 0; i < n; ++i) choices[i].text = std::move(texts[i].text);
  return choices;
}

}  // namespace tfm::serve
