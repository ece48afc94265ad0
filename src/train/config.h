// Training configuration: a TOML file (or JSON when the name ends in .json) with three sections,
// [model], [data] and [train], read into TrainConfig.
//
// Every key is described once, in the key table in config.cpp (section, name, allowed values or
// range, one-line doc), bound to the member below; that table drives parsing, validation,
// serialisation (to_json) and the reference documentation (docs/config.md). Defaults are the member
// initialisers here. Missing keys keep their defaults; unknown sections or keys, wrong types and values
// outside the allowed set or range are errors naming the file, line:column and key.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "data/parallel_corpus.h"

namespace tfm::train {

struct ModelSection {
  std::string arch = "encoder-decoder";
  int64_t d_model = 256;
  int64_t heads = 4;
  int64_t d_ff = 1024;
  int64_t encoder_layers = 3;
  int64_t decoder_layers = 3;
  double dropout = 0.1;
  double attention_dropout = 0.1;
  double activation_dropout = 0.1;
  std::string norm = "seed";
  std::string norm_position = "pre";
  double norm_eps = 1e-6;
  std::string positions = "sinusoidal";
  std::string activation = "relu";
  int64_t max_len = 128;
  bool tie_embeddings = false;
  bool share_embeddings = false;
  bool scale_embeddings = true;
  bool attention_bias = false;
  bool ffn_bias = true;
  bool output_bias = true;
  int64_t kv_heads = 0;
  std::string attention = "softmax";
  int64_t sliding_window = 0;
  int64_t global_tokens = 0;
  int64_t experts = 0;
  int64_t experts_top_k = 2;
  double router_aux_loss_coef = 0.01;
  bool operator==(const ModelSection&) const = default;
};

struct DataSection {
  std::string train = "data/bible-en-es/train.tsv.gz";
  std::string valid = "data/bible-en-es/valid.tsv.gz";
  std::string test;
  std::string tokenizer = "bpe";
  std::string tokenizer_file;
  int64_t vocab_size = 8000;
  int64_t min_freq = 2;
  std::string invalid_utf8 = "error";
  int64_t max_tokens = 4096;
  int64_t valid_samples = 4;
  int64_t valid_max_pairs = 0;
  double mlm_probability = 0.15;
  int64_t text_column = 0;
  bool operator==(const DataSection&) const = default;
};

struct TrainSection {
  std::string optimizer = "adamw";
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-9;
  double weight_decay = 0.0;
  std::string schedule = "inverse_sqrt";
  int64_t warmup_steps = 200;
  int64_t max_steps = 800;
  double label_smoothing = 0.1;
  double clip_norm = 1.0;
  int64_t seed = 1;
  int64_t threads = 0;
  int64_t log_every = 10;
  int64_t eval_every = 200;
  int64_t checkpoint_every = 200;
  std::string out_dir = "runs/default";
  std::string init_from;
  std::string lora;  // nn/lora.h's spec ("r=8,alpha=16,targets=q,v"); "" = train every parameter
  bool eval_bleu = true;
  std::string best_metric = "auto";
  int64_t early_stopping = 0;
  int64_t test_beam = 4;
  std::string precision = "float32";
  double loss_scale = 65536;  // float16: the initial dynamic loss scale
  int64_t loss_scale_growth_interval = 2000;
  // Data parallelism (train/data_parallel.h).
  int64_t shards = 0;  // 0: one per rank
  double bucket_mb = 25;
  int64_t zero = 0;
  double dist_timeout = 300;
  bool operator==(const TrainSection&) const = default;
};

struct TrainConfig {
  ModelSection model;
  DataSection data;
  TrainSection train;
  bool operator==(const TrainConfig&) const = default;
};

enum class ConfigFormat { Toml, Json };

// Reads a config file: JSON when `path` ends in ".json", TOML otherwise.
TrainConfig load_train_config(const std::string& path);
// Parses config text; `origin` (usually the file name) starts every error message.
TrainConfig parse_train_config(std::string_view text, const std::string& origin, ConfigFormat format);

// Every key, defaults included: {"model": {...}, "data": {...}, "train": {...}} (for checkpoints).
nlohmann::json to_json(const TrainConfig& config);
// The inverse of to_json, as strict as a file: unknown sections or keys are errors; missing keys take
// their defaults.
TrainConfig from_json(const nlohmann::json& json, const std::string& origin = "config");

// The reference documentation of every key (docs/config.md is this text).
std::string config_reference_markdown();

// How the corpora of a model of architecture `arch` (model.arch's values) are read: tab-separated pairs
// for "encoder-decoder", text lines for the single-stack models, with the data.invalid_utf8 policy.
data::CorpusOptions corpus_options(const DataSection& data, const std::string& arch);

}  // namespace tfm::train
