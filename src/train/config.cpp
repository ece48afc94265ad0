#include "train/config.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <variant>
#include <vector>

#include "core/error.h"

namespace tfm::train {
namespace {

// ---------------------------------------------------------------------------------------------------
// The key table: the one description of every key.

using Field = std::variant<int64_t*, double*, bool*, std::string*>;

struct Bound {
  double value;
  bool inclusive;
};

// Allowed values of a number key; an absent bound is unlimited.
struct Range {
  std::optional<Bound> lo, hi;

  bool contains(double x) const {
    if (lo && (lo->inclusive ? x < lo->value : x <= lo->value)) return false;
    if (hi && (hi->inclusive ? x > hi->value : x >= hi->value)) return false;
    return true;
  }
  std::string str() const {  // ">= 1", "> 0", "[0, 1)"; "" when unlimited
    if (lo && hi)
      return fmt::format("{}{}, {}{}", lo->inclusive ? "[" : "(", lo->value, hi->value,
                         hi->inclusive ? "]" : ")");
    if (lo) return fmt::format("{} {}", lo->inclusive ? ">=" : ">", lo->value);
    if (hi) return fmt::format("{} {}", hi->inclusive ? "<=" : "<", hi->value);
    return "";
  }
};

Range at_least(double lo) { return {Bound{lo, true}, std::nullopt}; }
Range above(double lo) { return {Bound{lo, false}, std::nullopt}; }
Range unit_half_open() { return {Bound{0, true}, Bound{1, false}}; }  // [0, 1)

struct Choice {
  std::string_view value;
  std::string_view doc;
};

struct KeySpec {
  std::string_view section;
  std::string_view name;
  Field (*field)(TrainConfig&);  // the member this key sets
  Range range;                   // number keys
  std::vector<Choice> choices;   // string keys with a closed set of values; empty: any string
  std::string_view doc;
};

struct SectionSpec {
  std::string_view name;
  std::string_view doc;
};

constexpr SectionSpec kSections[] = {
    {"model", "The network's architecture and size."},
    {"data", "Corpora, tokenizer and batching."},
    {"train", "Optimizer, learning-rate schedule, loss, logging and checkpoints."},
};

// Section name, key name and member binding, from one spelling of the member.
// clang-format off
#define TFM_KEY(section, name) #section, #name, [](TrainConfig& c) -> Field { return &c.section.name; }
// clang-format on

const std::vector<KeySpec>& key_table() {
  static const std::vector<KeySpec> table = {
      // [model]
      {TFM_KEY(model, arch),
       {},
       {{"encoder-decoder",
         "Encoder and decoder stacks joined by cross-attention (the seed's translation model), trained on "
         "sentence pairs."},
        {"decoder-only",
         "One causal stack (GPT, Llama) trained as a language model on text: predict every next token."},
        {"encoder-only",
         "One bidirectional stack (BERT) trained as a masked language model on text: predict the tokens "
         "masked as BERT masks them (data.mlm_probability of the tokens; 80% become <mask>, 10% a random "
         "token, 10% stay)."}},
       "Model architecture; train.init_from replaces the whole [model] section with the model it loads."},
      {TFM_KEY(model, d_model), at_least(1), {}, "Width of the embeddings and of the residual stream."},
      {TFM_KEY(model, heads), at_least(1), {}, "Attention heads per attention layer; must divide d_model."},
      {TFM_KEY(model, kv_heads),
       at_least(0),
       {},
       "Key/value heads (0 = heads); fewer than heads is grouped-query attention (heads must be a "
       "multiple)."},
      {TFM_KEY(model, d_ff), at_least(1), {}, "Inner width of the feed-forward layers."},
      {TFM_KEY(model, encoder_layers), at_least(1), {}, "Number of encoder layers (unused by decoder-only)."},
      {TFM_KEY(model, decoder_layers), at_least(1), {}, "Number of decoder layers (unused by encoder-only)."},
      {TFM_KEY(model, dropout),
       unit_half_open(),
       {},
       "Dropout probability while training, on the embeddings and on each sublayer's output."},
      {TFM_KEY(model, attention_dropout), unit_half_open(), {}, "Dropout on the attention probabilities."},
      {TFM_KEY(model, activation_dropout),
       unit_half_open(),
       {},
       "Dropout inside the feed-forward block, after the activation (the seed: dropout; Marian: 0)."},
      {TFM_KEY(model, norm),
       {},
       {{"seed", "The seed's normalisation: alpha * (x - mean) / (unbiased std + eps) + bias."},
        {"layernorm", "torch.nn.LayerNorm: (x - mean) / sqrt(biased variance + eps) * weight + bias."},
        {"rmsnorm", "RMSNorm (Llama): x / sqrt(mean(x^2) + eps) * weight."}},
       "Normalisation layer."},
      {TFM_KEY(model, norm_position),
       {},
       {{"pre", "Normalise each sublayer's input: x + f(norm(x))."},
        {"post", "Normalise after the residual sum: norm(x + f(x)) (the original Transformer)."}},
       "Where the normalisation sits around each sublayer."},
      {TFM_KEY(model, norm_eps), above(0), {}, "Epsilon of the normalisation."},
      {TFM_KEY(model, positions),
       {},
       {{"sinusoidal", "Fixed sine and cosine position encodings added to the token embeddings."},
        {"sinusoidal_half",
         "The same encodings in Marian's layout: all sines, then all cosines (the seed interleaves them)."},
        {"learned", "A trained embedding per position (GPT-2, BERT), added to the token embeddings."},
        {"rope", "Rotary embeddings of queries and keys, rotate-half convention (Llama)."},
        {"alibi", "Linear biases on the attention scores by key distance, one slope per head (BLOOM)."},
        {"relative",
         "T5's bucketed relative-position biases: 32 buckets up to distance 128, one table per stack."}},
       "Position information."},
      {TFM_KEY(model, activation),
       {},
       {{"relu", "max(0, x) between the two feed-forward projections."},
        {"gelu", "The exact GELU, x * Phi(x) (BERT)."},
        {"gelu_tanh", "GELU's tanh approximation (GPT-2)."},
        {"swiglu", "silu(gate(x)) * up(x), a third d_model x d_ff projection (Llama)."}},
       "Feed-forward activation."},
      {TFM_KEY(model, max_len),
       at_least(3),
       {},
       "Most tokens per encoder or decoder sequence, special tokens included."},
      {TFM_KEY(model, tie_embeddings),
       {},
       {},
       "Share one matrix between the input embedding and the output projection."},
      {TFM_KEY(model, share_embeddings),
       {},
       {},
       "Encoder and decoder embed with one matrix (Marian; needs one tokenizer for both languages)."},
      {TFM_KEY(model, scale_embeddings),
       {},
       {},
       "Multiply the token embeddings by sqrt(d_model) (the paper, the seed, Marian; GPT-2 and Llama do "
       "not)."},
      {TFM_KEY(model, attention_bias), {}, {}, "Biases on the query, key, value and output projections."},
      {TFM_KEY(model, ffn_bias), {}, {}, "Biases on the feed-forward projections (Llama has none)."},
      {TFM_KEY(model, output_bias),
       {},
       {},
       "A trained bias on the output projection (the seed's; GPT-2, Llama and Marian have none)."},
      {TFM_KEY(model, attention),
       {},
       {{"softmax", "softmax(q k^T / sqrt(d)) v, by the fused flash-style kernel."},
        {"linear",
         "Linear attention, phi(q) (phi(k)^T v) with phi = elu + 1 (Katharopoulos et al. 2020): O(n) time "
         "and "
         "memory; self-attention only (cross-attention stays softmax), no ALiBi or relative positions."}},
       "The self-attention's kernel."},
      {TFM_KEY(model, sliding_window),
       at_least(0),
       {},
       "Causal self-attention sees only the last this many tokens, itself included (0 = all; Mistral)."},
      {TFM_KEY(model, global_tokens),
       at_least(0),
       {},
       "The first this many positions are global: every query sees them and they see every earlier token. "
       "With sliding_window this is block-sparse attention (Longformer / BigBird: local window + global "
       "tokens); 0 = none."},
      {TFM_KEY(model, experts),
       at_least(0),
       {},
       "Mixture-of-experts feed-forward layers with this many experts (0 = a plain feed-forward; Mixtral)."},
      {TFM_KEY(model, experts_top_k), at_least(1), {}, "Experts each token is routed to (at most experts)."},
      {TFM_KEY(model, router_aux_loss_coef),
       at_least(0),
       {},
       "Weight of Mixtral's load-balancing loss, added to the training loss of a mixture-of-experts model."},
      // [data]
      {TFM_KEY(data, train),
       {},
       {},
       "Training corpus (gzip-compressed when the name ends in .gz): for encoder-decoder, source and target "
       "sentence separated by a tab, one pair per line; for decoder-only and encoder-only, plain text, each "
       "line followed by the end-of-sequence token in the token stream."},
      {TFM_KEY(data, valid), {}, {}, "Validation corpus, in the format of train."},
      {TFM_KEY(data, test),
       {},
       {},
       "Encoder-decoder: test corpus, translated with train.test_beam beams by the best checkpoint when "
       "training ends; BLEU and chrF go to metrics.jsonl and the translations to test.hyp (\"\" = none)."},
      {TFM_KEY(data, tokenizer),
       {},
       {{"bpe",
         "Byte-level BPE (as GPT-2 and Hugging Face tokenizers) shared by both languages, trained on both "
         "sides "
         "of the training corpus at the first run and cached in the run folder (tokenizer.json); special "
         "tokens <pad>, <s>, </s>."},
        {"word",
         "The seed's word-level tokenizer, with a vocabulary per language built from the training corpus."}},
       "Tokenizer trained on the training corpus (ignored when tokenizer_file is set)."},
      {TFM_KEY(data, tokenizer_file),
       {},
       {},
       "A ready-made tokenizer shared by both languages instead of training one: a tokenizer.json, a folder "
       "holding one, GPT-2's encoder.json, a SentencePiece .model or a WordPiece vocab .txt. It needs pad, "
       "start and end tokens."},
      {TFM_KEY(data, vocab_size),
       at_least(259),
       {},
       "Tokens in a trained BPE vocabulary, the 256 byte tokens and the special tokens included."},
      {TFM_KEY(data, min_freq),
       at_least(1),
       {},
       "Minimum count in the training corpus: rarer words become the unknown token (word), rarer pairs are "
       "never merged (bpe)."},
      {TFM_KEY(data, invalid_utf8),
       {},
       {{"error", "Stop with an error naming the file, the line and the byte offset."},
        {"replace",
         "Replace each ill-formed sequence with U+FFFD (as Python's errors=\"replace\"), counted."},
        {"skip", "Skip the line, counted."}},
       "What to do with a corpus line that is not valid UTF-8."},
      {TFM_KEY(data, max_tokens),
       at_least(1),
       {},
       "Token budget per batch: batch size x padded length (text: max(1, max_tokens / max_len) windows of "
       "max_len tokens)."},
      {TFM_KEY(data, valid_samples),
       at_least(0),
       {},
       "Validation sentences translated and shown at each evaluation."},
      {TFM_KEY(data, valid_max_pairs),
       at_least(0),
       {},
       "Validation pairs used at each evaluation (0 = all)."},
      {TFM_KEY(data, text_column),
       at_least(0),
       {},
       "Decoder-only and encoder-only: 0 reads each line of the corpora whole; N reads only its N-th "
       "tab-separated field (e.g. 1: the English side of the parallel corpus)."},
      {TFM_KEY(data, mlm_probability),
       {Bound{0, false}, Bound{1, false}},
       {},
       "Share of the tokens an encoder-only model learns to predict (BERT: 0.15)."},
      // [train]
      {TFM_KEY(train, optimizer),
       {},
       {{"adam", "torch.optim.Adam: weight_decay adds an L2 term to the gradient."},
        {"adamw",
         "torch.optim.AdamW: decoupled weight decay, weights shrink by lr x weight_decay each step."}},
       "Optimizer."},
      {TFM_KEY(train, lr), above(0), {}, "Peak learning rate (the schedule scales it)."},
      {TFM_KEY(train, beta1), unit_half_open(), {}, "Adam's decay rate of the first moment."},
      {TFM_KEY(train, beta2), unit_half_open(), {}, "Adam's decay rate of the second moment."},
      {TFM_KEY(train, eps), above(0), {}, "Adam's epsilon, added to the denominator."},
      {TFM_KEY(train, weight_decay), at_least(0), {}, "Weight decay (how it applies depends on optimizer)."},
      {TFM_KEY(train, schedule),
       {},
       {{"constant", "lr after a linear warmup."},
        {"inverse_sqrt",
         "Linear warmup to lr, then lr x sqrt(warmup_steps / step) (Attention Is All You Need); without "
         "warmup, "
         "lr / sqrt(step)."},
        {"cosine",
         "Linear warmup to lr, then half a cosine down to 0 at max_steps (needs warmup_steps < max_steps)."}},
       "Learning-rate schedule."},
      {TFM_KEY(train, warmup_steps), at_least(0), {}, "Steps of linear warmup from 0 to lr."},
      {TFM_KEY(train, max_steps), at_least(1), {}, "Optimizer steps to train for."},
      {TFM_KEY(train, label_smoothing),
       unit_half_open(),
       {},
       "Label smoothing of the cross-entropy loss (0 = none)."},
      {TFM_KEY(train, clip_norm),
       at_least(0),
       {},
       "Largest global L2 norm of the gradients (0 = no clipping)."},
      {TFM_KEY(train, seed),
       at_least(0),
       {},
       "Seed of every random choice: initialisation, dropout, shuffling."},
      {TFM_KEY(train, threads), at_least(0), {}, "CPU threads (0 = all cores)."},
      {TFM_KEY(train, log_every), at_least(1), {}, "Steps between training log lines."},
      {TFM_KEY(train, eval_every), at_least(1), {}, "Steps between evaluations on the validation corpus."},
      {TFM_KEY(train, checkpoint_every), at_least(1), {}, "Steps between checkpoints."},
      {TFM_KEY(train, out_dir), {}, {}, "Directory for checkpoints and logs."},
      {TFM_KEY(train, eval_bleu),
       {},
       {},
       "Encoder-decoder: each evaluation also translates the validation sources greedily and scores BLEU "
       "and chrF (sacreBLEU's defaults) against their references."},
      {TFM_KEY(train, best_metric),
       {},
       {{"auto", "Validation BLEU when it is computed, the validation loss otherwise."},
        {"bleu", "Validation BLEU (higher is better; needs eval_bleu and an encoder-decoder)."},
        {"loss", "Validation loss (lower is better)."},
        {"none", "Keep no best checkpoint."}},
       "What makes an evaluation the best so far: its model is saved as best.safetensors (atomically)."},
      {TFM_KEY(train, early_stopping),
       at_least(0),
       {},
       "Stop when best_metric has not improved for this many evaluations in a row (0 = never)."},
      {TFM_KEY(train, test_beam), at_least(1), {}, "Beams for the final translation of data.test."},
      {TFM_KEY(train, precision),
       {},
       {{"float32", "Every product in float32."},
        {"bfloat16",
         "Mixed precision: the training step's matrix products take bfloat16 operands (AVX512-BF16) with "
         "float32 accumulation; weights, gradients, optimizer state, norms, softmax and loss stay float32; "
         "validation runs in float32."},
        {"float16",
         "Half precision's numerics, emulated: the products' operands are rounded to IEEE binary16 (range "
         "+-65504, smallest subnormal 2^-24) and multiplied in float32, with dynamic loss scaling "
         "(loss_scale); no faster than float32 on a CPU without FP16 arithmetic."}},
       "Precision of the training step's matrix products."},
      {TFM_KEY(train, loss_scale),
       above(0),
       {},
       "precision = \"float16\": the initial loss scale. The loss is multiplied by it before backward and "
       "the gradients divided by it; a step whose gradients overflow is skipped and the scale halved."},
      {TFM_KEY(train, loss_scale_growth_interval),
       at_least(1),
       {},
       "precision = \"float16\": the loss scale doubles after this many steps in a row without overflow."},
      {TFM_KEY(train, shards),
       at_least(0),
       {},
       "Data parallelism (mpirun -np N tfm train): shards each batch is cut into, row by row (0 = one per "
       "rank). Must be a multiple of the ranks; a rank runs its shards one after the other and sums their "
       "gradients pairwise, as the ranks' gradients are summed (in a fixed order). With a power of two of "
       "shards per rank, the run gives the same bits on any number of ranks, one process included."},
      {TFM_KEY(train, bucket_mb),
       at_least(0),
       {},
       "Data parallelism: size of the gradient buckets whose all-reduce starts while backward goes on "
       "(0 = one all-reduce after backward)."},
      {TFM_KEY(train, zero),
       Range{Bound{0, true}, Bound{1, true}},
       {},
       "Data parallelism: 1 = ZeRO stage 1, the optimizer state sharded across the ranks (each updates its "
       "share of the parameters; memory of the moments / N); 0 = every rank holds all of it."},
      {TFM_KEY(train, dist_timeout),
       above(0),
       {},
       "Data parallelism: seconds a rank waits for the others (at a collective, or while rank 0 evaluates "
       "and saves) before it stops with an error naming the ranks that did not arrive."},
      {TFM_KEY(train, lora),
       {},
       {},
       "LoRA fine-tuning: \"r=8,alpha=16,dropout=0.05,targets=q,v\" adds low-rank adapters (rank r, "
       "scale alpha / r) to the targeted projections (q, k, v, o, fc1, fc2, gate or Hugging Face's names) "
       "and trains only them; the base weights stay frozen (no gradient, no optimizer state). Empty: "
       "train every parameter."},
      {TFM_KEY(train, init_from),
       {},
       {},
       "Fine-tune: start from this model instead of a random one: a Hugging Face folder (config.json, "
       "model.safetensors, tokenizer.json), a tfm run folder or checkpoint. Its architecture and tokenizer "
       "replace [model] and the data tokenizer settings."},
  };
  return table;
}

#undef TFM_KEY

const SectionSpec* find_section(std::string_view name) {
  for (const SectionSpec& s : kSections)
    if (s.name == name) return &s;
  return nullptr;
}

const KeySpec* find_key(std::string_view section, std::string_view name) {
  for (const KeySpec& k : key_table())
    if (k.section == section && k.name == name) return &k;
  return nullptr;
}

std::string valid_sections() {
  std::string list;
  for (const SectionSpec& s : kSections) list += fmt::format("{}[{}]", list.empty() ? "" : ", ", s.name);
  return list;
}

std::string valid_keys(std::string_view section) {
  std::string list;
  for (const KeySpec& k : key_table())
    if (k.section == section) list += fmt::format("{}{}", list.empty() ? "" : ", ", k.name);
  return list;
}

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
// Implicit in C++20 (aggregate deduction), but clang before 17 needs it spelled out.
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// Only read: the key table's bindings need a non-const config.
TrainConfig& defaults() {
  static TrainConfig config;
  return config;
}

// The type of a key, as the docs and error messages name it.
std::string_view type_name(const KeySpec& spec) {
  return std::visit(Overloaded{[](int64_t*) { return "integer"; }, [](double*) { return "number"; },
                               [](bool*) { return "boolean"; }, [](std::string*) { return "string"; }},
                    spec.field(defaults()));
}

std::string quoted_choices(const KeySpec& spec) {
  std::string list;
  for (const Choice& c : spec.choices) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", c.value);
  return list;
}

// "an integer >= 1", "one of \"pre\", \"post\"", ...: what a key accepts.
std::string expected(const KeySpec& spec) {
  const std::string_view type = type_name(spec);
  if (type == "string") return spec.choices.empty() ? "a string" : "one of " + quoted_choices(spec);
  if (type == "boolean") return "true or false";
  const std::string range = spec.range.str();
  const std::string article = type == "integer" ? "an integer" : "a number";
  if (range.empty()) return article;
  return article + (range[0] == '[' || range[0] == '(' ? " in " : " ") + range;
}

// ---------------------------------------------------------------------------------------------------
// Reading: both formats become a sequence of sections and items fed to one ConfigBuilder.

struct Location {
  int64_t line = 0;  // 1-based; 0: unknown
  int64_t column = 0;
};

std::string where(const std::string& origin, Location at) {
  if (at.line == 0) return origin;
  return fmt::format("{}:{}:{}", origin, at.line, at.column);
}

// One value read from a file, whatever the format.
struct Item {
  std::variant<std::monostate, int64_t, double, bool, std::string> value;  // monostate: not a scalar
  std::string type;                                                        // "integer", "array", ...
  Location at;
};

std::string describe(const Item& item) {  // "integer 0", "string \"x\"", "array"
  return std::visit(Overloaded{[&](std::monostate) { return item.type; },
                               [&](const std::string& s) { return fmt::format("{} \"{}\"", item.type, s); },
                               [&](const auto& x) { return fmt::format("{} {}", item.type, x); }},
                    item.value);
}

class ConfigBuilder {
 public:
  explicit ConfigBuilder(std::string origin) : origin_(std::move(origin)) {}

  // A top-level entry: it must be one of the sections, holding keys.
  void section(std::string_view name, bool holds_keys, std::string_view type, Location at) const {
    if (!find_section(name)) {
      if (holds_keys)
        fail("{}: unknown section [{}]; valid sections: {}", where(origin_, at), name, valid_sections());
      fail("{}: key '{}' outside any section; keys belong in {}", where(origin_, at), name, valid_sections());
    }
    if (!holds_keys) fail("{}: [{}] must be a section of keys, got {}", where(origin_, at), name, type);
  }

  void set(std::string_view section, std::string_view key, const Item& item, Location key_at) {
    const KeySpec* spec = find_key(section, key);
    if (!spec)
      fail("{}: unknown key '{}' in [{}]; valid keys: {}", where(origin_, key_at), key, section,
           valid_keys(section));
    std::visit([&](auto* member) { assign(*spec, item, *member); }, spec->field(config_));
    locations_[fmt::format("{}.{}", section, key)] = item.at;
  }

  // Checks that involve more than one key; an error points at the first key involved that was given.
  TrainConfig finish() const {
    const ModelSection& m = config_.model;
    if (m.d_model % m.heads != 0)
      fail("{}: [model] d_model ({}) must be divisible by heads ({})",
           where(origin_, location({"model.heads", "model.d_model"})), m.d_model, m.heads);
    if (m.kv_heads > 0 && m.heads % m.kv_heads != 0)
      fail("{}: [model] heads ({}) must be a multiple of kv_heads ({})",
           where(origin_, location({"model.kv_heads", "model.heads"})), m.heads, m.kv_heads);
    if (m.experts > 0 && m.experts_top_k > m.experts)
      fail("{}: [model] experts_top_k ({}) must be at most experts ({})",
           where(origin_, location({"model.experts_top_k", "model.experts"})), m.experts_top_k, m.experts);
    if (m.positions == "rope" && (m.d_model / m.heads) % 2 != 0)
      fail("{}: [model] rope needs an even head width, d_model / heads = {}",
           where(origin_, location({"model.positions", "model.d_model", "model.heads"})),
           m.d_model / m.heads);
    if (m.attention == "linear" && (m.sliding_window > 0 || m.global_tokens > 0))
      fail("{}: [model] linear attention has no sliding_window or global_tokens",
           where(origin_, location({"model.sliding_window", "model.global_tokens", "model.attention"})));
    if (m.attention == "linear" && (m.positions == "alibi" || m.positions == "relative"))
      fail("{}: [model] linear attention has no scores for {} positions",
           where(origin_, location({"model.positions", "model.attention"})), m.positions);
    const TrainSection& t = config_.train;
    if (t.best_metric == "bleu" && (!t.eval_bleu || m.arch != "encoder-decoder"))
      fail("{}: [train] best_metric \"bleu\" needs eval_bleu = true and an encoder-decoder model",
           where(origin_, location({"train.best_metric", "train.eval_bleu", "model.arch"})));
    if (t.early_stopping > 0 && t.best_metric == "none")
      fail("{}: [train] early_stopping needs a best_metric to watch, not \"none\"",
           where(origin_, location({"train.early_stopping", "train.best_metric"})));
    if (t.schedule == "cosine" && t.warmup_steps >= t.max_steps)
      fail("{}: [train] warmup_steps ({}) must be below max_steps ({}) for the cosine schedule",
           where(origin_, location({"train.warmup_steps", "train.max_steps", "train.schedule"})),
           t.warmup_steps, t.max_steps);
    return config_;
  }

 private:
  [[noreturn]] void reject(const KeySpec& spec, const Item& item) const {
    fail("{}: [{}] {}: expected {}, got {}", where(origin_, item.at), spec.section, spec.name, expected(spec),
         describe(item));
  }

  void assign(const KeySpec& spec, const Item& item, int64_t& member) const {
    const int64_t* v = std::get_if<int64_t>(&item.value);
    if (!v || !spec.range.contains(double(*v))) reject(spec, item);
    member = *v;
  }
  void assign(const KeySpec& spec, const Item& item, double& member) const {
    std::optional<double> v;
    if (const auto* i = std::get_if<int64_t>(&item.value)) v = double(*i);
    if (const auto* d = std::get_if<double>(&item.value)) v = *d;
    if (!v || !std::isfinite(*v) || !spec.range.contains(*v)) reject(spec, item);
    member = *v;
  }
  void assign(const KeySpec& spec, const Item& item, bool& member) const {
    const bool* v = std::get_if<bool>(&item.value);
    if (!v) reject(spec, item);
    member = *v;
  }
  void assign(const KeySpec& spec, const Item& item, std::string& member) const {
    const std::string* v = std::get_if<std::string>(&item.value);
    const auto allowed = [&](const Choice& c) { return c.value == *v; };
    if (!v || (!spec.choices.empty() && std::none_of(spec.choices.begin(), spec.choices.end(), allowed)))
      reject(spec, item);
    member = *v;
  }

  Location location(std::initializer_list<std::string_view> keys) const {
    for (std::string_view key : keys)
      if (const auto it = locations_.find(key); it != locations_.end()) return it->second;
    return {};
  }

  std::string origin_;
  TrainConfig config_;
  std::map<std::string, Location, std::less<>> locations_;  // of the keys given, for cross-key errors
};

// ---- TOML

Location location_of(const toml::source_region& region) {
  return {int64_t(region.begin.line), int64_t(region.begin.column)};
}

Item toml_item(const toml::node& node) {
  Item item{.value = {}, .type = "", .at = location_of(node.source())};
  switch (node.type()) {
    case toml::node_type::integer:
      item.value = node.as_integer()->get();
      item.type = "integer";
      break;
    case toml::node_type::floating_point:
      item.value = node.as_floating_point()->get();
      item.type = "float";
      break;
    case toml::node_type::boolean:
      item.value = node.as_boolean()->get();
      item.type = "boolean";
      break;
    case toml::node_type::string:
      item.value = node.as_string()->get();
      item.type = "string";
      break;
    default:
      item.type = fmt::format("{}", fmt::streamed(node.type()));  // "table", "array", "date", ...
  }
  return item;
}

TrainConfig parse_toml(std::string_view text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    fail("{}: malformed TOML: {}", where(origin, location_of(e.source())), e.description());
  }
  ConfigBuilder builder(origin);
  for (const auto& [name, node] : root) {
    builder.section(name.str(), node.is_table(), toml_item(node).type, location_of(name.source()));
    for (const auto& [key, value] : *node.as_table())
      builder.set(name.str(), key.str(), toml_item(value), location_of(key.source()));
  }
  return builder.finish();
}

// ---- JSON

Location location_at(std::string_view text, size_t offset) {
  Location at{1, 1};
  for (size_t i = 0; i < std::min(offset, text.size()); ++i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else {
      ++at.column;
    }
  }
  return at;
}

// nlohmann::json keeps no source positions, so a scan of the (valid) text finds where the keys of the
// first two object levels are: "section" and "section.key". Duplicate keys, which nlohmann silently
// collapses, are reported here.
std::map<std::string, Location> json_key_locations(std::string_view text, const std::string& origin) {
  std::map<std::string, Location> found;
  std::vector<std::string> current_key;  // per open container, the last key read in it
  std::string last_string;
  size_t last_string_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    switch (text[i]) {
      case '"':
        last_string_start = i;
        last_string.clear();
        for (++i; i < text.size() && text[i] != '"'; ++i) {
          if (text[i] == '\\') ++i;  // keeps escapes raw: a key spelt with escapes just loses its position
          if (i < text.size()) last_string += text[i];
        }
        break;
      case '{':
      case '[':
        current_key.emplace_back();
        break;
      case '}':
      case ']':
        current_key.pop_back();
        break;
      case ':': {
        current_key.back() = last_string;
        if (current_key.size() > 2) break;
        const std::string path = current_key.size() == 1 ? last_string : current_key[0] + "." + last_string;
        const Location at = location_at(text, last_string_start);
        if (!found.emplace(path, at).second) fail("{}: duplicate key '{}'", where(origin, at), path);
        break;
      }
    }
  }
  return found;
}

std::string json_type(const nlohmann::json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "float";
  return j.type_name();  // "object", "array", "string", "boolean", "null"
}

Item json_item(const nlohmann::json& j, Location at) {
  Item item{.value = {}, .type = json_type(j), .at = at};
  if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX))
    item.value = j.get<double>();  // beyond int64: out of every integer range, reported as a number
  else if (j.is_number_integer())
    item.value = j.get<int64_t>();
  else if (j.is_number_float())
    item.value = j.get<double>();
  else if (j.is_boolean())
    item.value = j.get<bool>();
  else if (j.is_string())
    item.value = j.get<std::string>();
  return item;
}

TrainConfig read_json(const nlohmann::json& root, const std::string& origin,
                      const std::map<std::string, Location>& locations) {
  if (!root.is_object())
    fail("{}: expected an object of sections ({}), got {}", origin, valid_sections(), json_type(root));
  const auto location = [&](const std::string& path) {
    const auto it = locations.find(path);
    return it == locations.end() ? Location{} : it->second;
  };
  ConfigBuilder builder(origin);
  for (const auto& [name, section] : root.items()) {
    builder.section(name, section.is_object(), json_type(section), location(name));
    for (const auto& [key, value] : section.items()) {
      const Location at = location(name + "." + key);
      builder.set(name, key, json_item(value, at), at);
    }
  }
  return builder.finish();
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 3, column 5: "
// prefix, since the location is given already.
std::string json_error_detail(const std::string& what) {
  const size_t column = what.find("column");
  const size_t colon = what.find(": ", column == std::string::npos ? 0 : column);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

TrainConfig parse_json(std::string_view text, const std::string& origin) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const Location at = location_at(text, e.byte == 0 ? 0 : e.byte - 1);
    fail("{}: malformed JSON: {}", where(origin, at), json_error_detail(e.what()));
  }
  return read_json(root, origin, json_key_locations(text, origin));
}

// ---------------------------------------------------------------------------------------------------
// Writing.

nlohmann::json value_json(const KeySpec& spec, TrainConfig& config) {
  return std::visit([](auto* member) { return nlohmann::json(*member); }, spec.field(config));
}

std::string default_text(const KeySpec& spec) {  // as it would be written in a TOML file
  return std::visit(Overloaded{[](const std::string* s) { return fmt::format("\"{}\"", *s); },
                               [](const bool* b) { return std::string(*b ? "true" : "false"); },
                               [](const int64_t* i) { return fmt::format("{}", *i); },
                               [](const double* x) {  // "1.0", not "1": a float in TOML
                                 const std::string text = fmt::format("{}", *x);
                                 return text.find_first_of(".e") == std::string::npos ? text + ".0" : text;
                               }},
                    spec.field(defaults()));
}

std::string allowed_text(const KeySpec& spec) {
  if (!spec.choices.empty()) return quoted_choices(spec);
  if (type_name(spec) == "boolean") return "true, false";
  const std::string range = spec.range.str();
  return range.empty() ? "any" : range;
}

void append_section_markdown(std::string& out, const SectionSpec& section) {
  out += fmt::format("\n## [{}]\n\n{}\n\n", section.name, section.doc);
  out += "| Key | Type | Default | Allowed | Description |\n| --- | --- | --- | --- | --- |\n";
  for (const KeySpec& k : key_table())
    if (k.section == section.name)
      out += fmt::format("| `{}` | {} | `{}` | {} | {} |\n", k.name, type_name(k), default_text(k),
                         allowed_text(k), k.doc);
  for (const KeySpec& k : key_table()) {
    if (k.section != section.name || k.choices.empty()) continue;
    out += fmt::format("\nValues of `{}`:\n\n", k.name);
    for (const Choice& c : k.choices) out += fmt::format("- `\"{}\"`: {}\n", c.value, c.doc);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open config file '{}'", path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("cannot read config file '{}'", path);
  return text.str();
}

}  // namespace

TrainConfig load_train_config(const std::string& path) {
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return parse_train_config(read_file(path), path, json ? ConfigFormat::Json : ConfigFormat::Toml);
}

TrainConfig parse_train_config(std::string_view text, const std::string& origin, ConfigFormat format) {
  return format == ConfigFormat::Json ? parse_json(text, origin) : parse_toml(text, origin);
}

nlohmann::json to_json(const TrainConfig& config) {
  TrainConfig copy = config;  // the bindings hand out non-const pointers
  nlohmann::json out = nlohmann::json::object();
  for (const KeySpec& k : key_table()) out[std::string(k.section)][std::string(k.name)] = value_json(k, copy);
  return out;
}

TrainConfig from_json(const nlohmann::json& json, const std::string& origin) {
  return read_json(json, origin, {});
}

std::string config_reference_markdown() {
  std::string out =
      "# Training configuration\n\n"
      "<!-- Generated by tfm::train::config_reference_markdown() from the key table in "
      "src/train/config.cpp;\n"
      "     edit the table, then regenerate: TFM_UPDATE_DOCS=1 build/tests/tfm_unit_tests "
      "--gtest_filter='Config.DocsInSync' -->\n\n"
      "A training run is described by a TOML file (JSON when the file name ends in `.json`) with the three\n"
      "sections below. Every key is optional and takes the default shown when missing. Integers are "
      "accepted\n"
      "where numbers are expected. Unknown sections or keys, values of the wrong type and values outside "
      "the\n"
      "allowed set or range are errors that name the file, line, column and key.\n";
  for (const SectionSpec& s : kSections) append_section_markdown(out, s);
  return out;
}

data::CorpusOptions corpus_options(const DataSection& data, const std::string& arch) {
  data::CorpusOptions options;
  options.format = arch == "encoder-decoder" ? data::CorpusFormat::ParallelTsv : data::CorpusFormat::Text;
  if (options.format == data::CorpusFormat::Text) options.column = int(data.text_column);
  options.utf8 = data.invalid_utf8 == "replace" ? data::Utf8Policy::Replace
                 : data.invalid_utf8 == "skip"  ? data::Utf8Policy::Skip
                                                : data::Utf8Policy::Error;
  return options;
}

}  // namespace tfm::train
