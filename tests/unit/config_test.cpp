#include "train/config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/error.h"
#include "test_support.h"

namespace tfm::train {
namespace {

TrainConfig toml(const std::string& text) { return parse_train_config(text, "cfg.toml", ConfigFormat::Toml); }
TrainConfig json(const std::string& text) { return parse_train_config(text, "cfg.json", ConfigFormat::Json); }

// Passes when parsing `text` fails with a tfm::Error containing every one of `parts`.
::testing::AssertionResult rejects(ConfigFormat format, const std::string& text,
                                   std::initializer_list<std::string> parts) {
  const char* origin = format == ConfigFormat::Json ? "cfg.json" : "cfg.toml";
  try {
    parse_train_config(text, origin, format);
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const std::string& part : parts)
      if (what.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "error \"" << what << "\" lacks \"" << part << "\"";
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "accepted:\n" << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(Config, DefaultsWhenKeysAreMissing) {
  const TrainConfig c = toml("");
  EXPECT_EQ(c, TrainConfig{});
  EXPECT_EQ(json("{}"), TrainConfig{});
  EXPECT_EQ(toml("[model]\n[data]\n[train]\n"), TrainConfig{});
  EXPECT_EQ(c.model.arch, "encoder-decoder");
  EXPECT_EQ(c.model.d_model, 256);
  EXPECT_EQ(c.model.heads, 4);
  EXPECT_EQ(c.model.norm, "seed");
  EXPECT_EQ(c.model.norm_eps, 1e-6);
  EXPECT_EQ(c.model.max_len, 128);
  EXPECT_FALSE(c.model.tie_embeddings);
  EXPECT_EQ(c.data.train, "data/bible-en-es/train.tsv.gz");
  EXPECT_EQ(c.data.max_tokens, 4096);
  EXPECT_EQ(c.train.optimizer, "adamw");
  EXPECT_EQ(c.train.beta2, 0.98);
  EXPECT_EQ(c.train.eps, 1e-9);
  EXPECT_EQ(c.train.schedule, "inverse_sqrt");
  EXPECT_EQ(c.train.warmup_steps, 200);
  EXPECT_EQ(c.train.max_steps, 800);
  EXPECT_EQ(c.train.out_dir, "runs/default");
}

TEST(Config, TomlAndJsonGiveTheSameConfig) {
  const TrainConfig from_toml = toml(R"(
[model]
d_model = 512
heads = 8
dropout = 0.3
norm = "layernorm"
norm_position = "post"
tie_embeddings = true

[data]
train = "corpus/train.tsv"
min_freq = 1

[train]
optimizer = "adam"
lr = 2         # an integer where a number is expected
schedule = "cosine"
weight_decay = 0.01
)");
  const TrainConfig from_json = json(R"({
  "model": {"d_model": 512, "heads": 8, "dropout": 0.3, "norm": "layernorm", "norm_position": "post",
            "tie_embeddings": true},
  "data": {"train": "corpus/train.tsv", "min_freq": 1},
  "train": {"optimizer": "adam", "lr": 2, "schedule": "cosine", "weight_decay": 0.01}
})");
  EXPECT_EQ(from_toml, from_json);
  EXPECT_EQ(from_toml.model.d_model, 512);
  EXPECT_EQ(from_toml.model.norm_position, "post");
  EXPECT_TRUE(from_toml.model.tie_embeddings);
  EXPECT_EQ(from_toml.data.train, "corpus/train.tsv");
  EXPECT_EQ(from_toml.train.lr, 2.0);
  EXPECT_EQ(from_toml.train.weight_decay, 0.01);
  EXPECT_EQ(from_toml.train.label_smoothing, 0.1);  // untouched default
}

TEST(Config, UnknownSectionOrKeyListsTheValidOnes) {
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nd_model = 64\n\n[optim]\nlr = 1\n",
                      {"cfg.toml:4:2: unknown section [optim]", "valid sections: [model], [data], [train]"}));
  EXPECT_TRUE(
      rejects(ConfigFormat::Toml, "[model]\nd_model = 64\ndmodel = 64\n",
              {"cfg.toml:3:1: unknown key 'dmodel' in [model]",
               "valid keys: arch, d_model, heads, kv_heads, d_ff, encoder_layers, decoder_layers, dropout, ",
               "experts_top_k, router_aux_loss_coef"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "lr = 1\n", {"cfg.toml:1:1: key 'lr' outside any section"}));
  EXPECT_TRUE(
      rejects(ConfigFormat::Toml, "model = 3\n", {"cfg.toml:1:1: [model] must be a section", "integer"}));
  EXPECT_TRUE(
      rejects(ConfigFormat::Json, "{\n  \"train\": {\n    \"learning_rate\": 0.1\n  }\n}",
              {"cfg.json:3:5: unknown key 'learning_rate' in [train]", "valid keys: optimizer, lr,"}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "{\"model\": {}, \"extra\": {}}",
                      {"cfg.json:1:15: unknown section [extra]", "valid sections"}));
}

TEST(Config, WrongTypeNamesFileLineKeyAndExpectation) {
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nd_model = \"big\"\n",
                      {"cfg.toml:2:11: [model] d_model: expected an integer >= 1, got string \"big\""}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\n\nheads = 4.0\n",
                      {"cfg.toml:3:9: [model] heads: expected an integer >= 1, got float 4"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\ntie_embeddings = 1\n",
                      {"cfg.toml:2:18: [model] tie_embeddings: expected true or false, got integer 1"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[data]\ntrain = [\"a\", \"b\"]\n",
                      {"cfg.toml:2:9: [data] train: expected a string, got array"}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "{\"data\": {\n\"max_tokens\": \"many\"}}",
                      {"cfg.json:2:1: [data] max_tokens: expected an integer >= 1, got string \"many\""}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "{\"train\": {\"lr\": null}}",
                      {"cfg.json:1:12: [train] lr: expected a number > 0, got null"}));
}

TEST(Config, ValueOutsideAllowedSetOrRange) {
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\ndropout = 1.5\n",
                      {"cfg.toml:2:11: [model] dropout: expected a number in [0, 1), got float 1.5"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nnorm = \"batchnorm\"\n",
                      {"cfg.toml:2:8: [model] norm: expected one of \"seed\", \"layernorm\", \"rmsnorm\", "
                       "got string \"batchnorm\""}));
  EXPECT_TRUE(
      rejects(ConfigFormat::Toml, "[train]\nlr = 0\n", {"cfg.toml:2:6: [train] lr: expected a number > 0"}));
  EXPECT_TRUE(
      rejects(ConfigFormat::Toml, "[train]\nlr = nan\n", {"cfg.toml:2:6: [train] lr", "got float nan"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[train]\nwarmup_steps = -1\n",
                      {"cfg.toml:2:16: [train] warmup_steps: expected an integer >= 0, got integer -1"}));
  EXPECT_TRUE(rejects(
      ConfigFormat::Json, "{\"train\": {\n  \"schedule\": \"linear\"\n}}",
      {"cfg.json:2:3: [train] schedule: expected one of \"constant\", \"inverse_sqrt\", \"cosine\""}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "{\"model\": {\"heads\": 18446744073709551615}}",
                      {"[model] heads: expected an integer >= 1"}));
}

TEST(Config, CrossKeyConstraints) {
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nd_model = 256\nheads = 3\n",
                      {"cfg.toml:3:9: [model] d_model (256) must be divisible by heads (3)"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml,
                      "[train]\nschedule = \"cosine\"\nwarmup_steps = 50\nmax_steps = 50\n",
                      {"cfg.toml:3:16: [train] warmup_steps (50) must be below max_steps (50)"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nheads = 4\nkv_heads = 3\n",
                      {"cfg.toml:3:12: [model] heads (4) must be a multiple of kv_heads (3)"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nexperts = 2\nexperts_top_k = 3\n",
                      {"cfg.toml:3:17: [model] experts_top_k (3) must be at most experts (2)"}));
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nd_model = 12\nheads = 4\npositions = \"rope\"\n",
                      {"cfg.toml:4:13: [model] rope needs an even head width, d_model / heads = 3"}));
}

TEST(Config, MalformedFilesNameThePosition) {
  EXPECT_TRUE(rejects(ConfigFormat::Toml, "[model]\nd_model = \n", {"cfg.toml:2:", "malformed TOML"}));
  EXPECT_TRUE(
      rejects(ConfigFormat::Toml, "[model]\nd_model = 1\nd_model = 2\n", {"cfg.toml:3:", "malformed TOML"}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "{\n  \"model\": {\"d_model\": 64,}\n}",
                      {"cfg.json:2:27: malformed JSON", "unexpected '}'"}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "{\"model\": {\"d_model\": 64},\n \"model\": {}}",
                      {"cfg.json:2:2: duplicate key 'model'"}));
  EXPECT_TRUE(rejects(ConfigFormat::Json, "[1, 2]", {"cfg.json: expected an object of sections"}));
}

TEST(Config, JsonRoundTrip) {
  TrainConfig c;
  c.model.norm = "layernorm";
  c.model.dropout = 0.25;
  c.data.valid_max_pairs = 100;
  c.train.lr = 3e-4;
  c.train.eps = 1e-8;
  c.train.out_dir = "runs/x";
  const nlohmann::json j = to_json(c);
  EXPECT_EQ(j["model"].size(), 28u);
  EXPECT_EQ(j["data"].size(), 13u);
  EXPECT_EQ(j["train"].size(), 30u);
  EXPECT_EQ(j["train"]["lr"], 3e-4);
  EXPECT_EQ(from_json(j), c);
  EXPECT_EQ(from_json(nlohmann::json::parse(j.dump())), c);  // through text, as a checkpoint stores it
  EXPECT_EQ(from_json(to_json(TrainConfig{})), TrainConfig{});

  nlohmann::json extra = j;
  extra["train"]["momentum"] = 0.9;
  try {
    from_json(extra, "checkpoint step-200");
    FAIL() << "an unknown key was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint step-200: unknown key 'momentum' in [train]"),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, LoadsFilesByExtension) {
  const std::string dir = test::temp_dir("config");
  write_text(dir + "/a.json", R"({"model": {"d_model": 32, "heads": 2}})");
  write_text(dir + "/a.toml", "[model]\nd_model = 32\nheads = 2\n");
  EXPECT_EQ(load_train_config(dir + "/a.json"), load_train_config(dir + "/a.toml"));
  EXPECT_EQ(load_train_config(dir + "/a.json").model.d_model, 32);
  write_text(dir + "/bad.toml", "[model]\nheads = 0\n");
  try {
    load_train_config(dir + "/bad.toml");
    FAIL() << "heads = 0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/bad.toml:2:9: [model] heads"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_train_config(dir + "/missing.toml"), Error);
}

TEST(Config, TinyRecipeParses) {
  const TrainConfig c = load_train_config(std::string(TFM_SOURCE_DIR) + "/recipes/seed-tiny.toml");
  EXPECT_EQ(c.model.d_model, 64);
  EXPECT_EQ(c.model.heads, 2);
  EXPECT_EQ(c.model.encoder_layers, 2);
  EXPECT_EQ(c.model.decoder_layers, 2);
  EXPECT_EQ(c.model.d_ff, 128);
  EXPECT_EQ(c.train.max_steps, 30);
  EXPECT_EQ(c.train.eval_every, 15);
  EXPECT_EQ(c.train.checkpoint_every, 15);
}

// Every shipped recipe is a valid config; the mt-en-es one says what the reference model's README says.
TEST(Config, EveryRecipeParses) {
  int recipes = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(TFM_SOURCE_DIR) + "/recipes")) {
    EXPECT_NO_THROW(load_train_config(e.path().string())) << e.path();
    ++recipes;
  }
  EXPECT_GE(recipes, 4);
  const TrainConfig c = load_train_config(std::string(TFM_SOURCE_DIR) + "/recipes/mt-en-es.toml");
  EXPECT_EQ(c.model.d_model, 256);
  EXPECT_EQ(c.model.heads, 4);
  EXPECT_EQ(c.model.d_ff, 1024);
  EXPECT_EQ(c.model.encoder_layers, 3);
  EXPECT_EQ(c.model.decoder_layers, 3);
  EXPECT_EQ(c.model.norm_position, "post");
  EXPECT_TRUE(c.model.share_embeddings && c.model.tie_embeddings);
  EXPECT_EQ(c.data.vocab_size, 8000);
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.warmup_steps, 1000);
  EXPECT_EQ(c.train.schedule, "inverse_sqrt");
  EXPECT_EQ(c.train.max_steps, 2100);
  EXPECT_EQ(c.train.label_smoothing, 0.1);
  EXPECT_EQ(c.train.clip_norm, 1.0);
  EXPECT_EQ(c.train.test_beam, 4);
}

TEST(Config, ReferenceDocumentsEveryKeyAndValue) {
  const std::string doc = config_reference_markdown();
  const nlohmann::json all_keys = to_json(TrainConfig{});
  for (const auto& [section, keys] : all_keys.items()) {
    EXPECT_NE(doc.find("## [" + section + "]"), std::string::npos) << section;
    for (const auto& [key, value] : keys.items())
      EXPECT_NE(doc.find("| `" + key + "` |"), std::string::npos) << key;
  }
  EXPECT_NE(doc.find("| `d_model` | integer | `256` | >= 1 |"), std::string::npos);
  EXPECT_NE(doc.find("- `\"layernorm\"`: "), std::string::npos);
  EXPECT_NE(doc.find("- `\"inverse_sqrt\"`: "), std::string::npos);
}

TEST(Config, DocsInSync) {
  const std::string path = std::string(TFM_SOURCE_DIR) + "/docs/config.md";
  const std::string generated = config_reference_markdown();
  if (std::getenv("TFM_UPDATE_DOCS")) write_text(path, generated);
  EXPECT_EQ(read_text(path), generated)
      << path << " is out of date with the key table in src/train/config.cpp. Regenerate it with\n"
      << "  TFM_UPDATE_DOCS=1 build/tests/tfm_unit_tests --gtest_filter='Config.DocsInSync'";
}

}  // namespace
}  // namespace tfm::train
