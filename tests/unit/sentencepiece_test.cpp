// SentencePiece: models trained by Debian's spm_train on the bible corpus; the reference for encode and
// decode is the spm_encode / spm_decode command-line tools on the same model.
#include "tokenize/sentencepiece.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/base64.h"
#include "io/atomic_file.h"
#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {
namespace {

using Ids = std::vector<int32_t>;
using test::error_of;

// The full path of `program` on $PATH, or "".
std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::filesystem::path candidate = std::filesystem::path(dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

// Runs a shell command with its stderr to `log`; "" on success, else what went wrong (with the log's end).
std::string run(const std::string& command, const std::string& log) {
  const int status = std::system(("(" + command + ") 2> " + log).c_str());
  if (status == 0) return "";
  const std::string text = io::read_file(log);
  return command + " failed (status " + std::to_string(status) +
         "): " + text.substr(text.size() - std::min<size_t>(text.size(), 2000));
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Column `column` (0: English, 1: Spanish) of the first `count` lines of a bible-en-es TSV file.
std::vector<std::string> corpus_side(const std::string& name, int column, size_t count) {
  std::vector<std::string> side;
  for (const std::string& line : read_lines(test::shared_dir() + "/data/bible-en-es/" + name)) {
    if (side.size() == count) break;
    const size_t tab = line.find('\t');
    side.push_back(column == 0 ? line.substr(0, tab) : line.substr(tab + 1));
  }
  return side;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  io::write_file_atomic(path, text);
}

class SentencePieceTest : public ::testing::Test {
 protected:
  // Trains the models once for all tests: unigram with spm_train's default special ids, BPE with a pad id.
  static void SetUpTestSuite() {
    dir_ = test::temp_dir("sentencepiece");
    if (find_on_path("spm_train").empty() || find_on_path("spm_encode").empty()) {
      setup_error_ =
          "spm_train / spm_encode not found on PATH: install the Debian package 'sentencepiece' "
          "(scripts/install-deps.sh does)";
      return;
    }
    write_lines(dir_ + "/train.txt", corpus_side("train.tsv", 0, 2000));
    for (const auto& [type, extra] :
         {std::pair<std::string, std::string>{"unigram", ""}, {"bpe", " --pad_id=3"}}) {
      setup_error_ =
          run("spm_train --input=" + dir_ + "/train.txt --model_prefix=" + dir_ + "/" + type +
                  " --vocab_size=500 --model_type=" + type + " --num_threads=2" + extra + " > /dev/null",
              dir_ + "/train.log");
      if (!setup_error_.empty()) return;
    }
  }

  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::string model(const std::string& type) { return dir_ + "/" + type + ".model"; }

  // spm_encode --output_format=id of each line.
  static std::vector<Ids> spm_encode(const std::string& type, const std::vector<std::string>& lines) {
    write_lines(dir_ + "/input.txt", lines);
    const std::string error = run("spm_encode --model=" + model(type) + " --output_format=id < " + dir_ +
                                      "/input.txt > " + dir_ + "/ids.txt",
                                  dir_ + "/encode.log");
    EXPECT_EQ(error, "");
    std::vector<Ids> all;
    for (const std::string& line : read_lines(dir_ + "/ids.txt")) {
      std::istringstream in(line);
      Ids ids;
      for (int32_t id; in >> id;) ids.push_back(id);
      all.push_back(ids);
    }
    return all;
  }

  // spm_decode --input_format=id of each id sequence.
  static std::vector<std::string> spm_decode(const std::string& type, const std::vector<Ids>& all) {
    std::vector<std::string> lines;
    for (const Ids& ids : all) {
      std::string line;
      for (int32_t id : ids) {
        if (!line.empty()) line += ' ';
        line += std::to_string(id);
      }
      lines.push_back(line);
    }
    write_lines(dir_ + "/ids_in.txt", lines);
    EXPECT_EQ(run("spm_decode --model=" + model(type) + " --input_format=id < " + dir_ + "/ids_in.txt > " +
                      dir_ + "/decoded.txt",
                  dir_ + "/decode.log"),
              "");
    return read_lines(dir_ + "/decoded.txt");
  }

  static std::vector<std::string> test_lines() {
    std::vector<std::string> lines = corpus_side("test.tsv", 0, 300);
    for (const std::string& line : corpus_side("test.tsv", 1, 100)) lines.push_back(line);  // unseen letters
    for (const char* odd : {"  leading and trailing  ", "tabs\tinside", "emoji 😀 and 你好", "x", "ǅ ﬁ ① Ⅻ"})
      lines.push_back(odd);
    return lines;
  }

  static inline std::string dir_;
  static inline std::string setup_error_;
};

TEST_F(SentencePieceTest, EncodeAndDecodeMatchSpmTools) {
  const std::vector<std::string> lines = test_lines();
  for (const std::string type : {"unigram", "bpe"}) {
    const auto tokenizer = SentencePieceTokenizer::load(model(type));
    const std::vector<Ids> want = spm_encode(type, lines);
    ASSERT_EQ(want.size(), lines.size());
    std::vector<Ids> got;
    for (const std::string& line : lines) got.push_back(tokenizer.encode(line));
    for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(got[i], want[i]) << type << ": " << lines[i];
    const std::vector<std::string> decoded = spm_decode(type, got);
    ASSERT_EQ(decoded.size(), lines.size());
    size_t unknown_lines = 0, round_trips = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(tokenizer.decode(got[i]), decoded[i]) << type << ": " << lines[i];
      if (std::count(got[i].begin(), got[i].end(), tokenizer.unk_id()) > 0) {
        ++unknown_lines;
      } else if (i < 300) {  // plain English: decoding gives the line back
        EXPECT_EQ(tokenizer.decode(got[i]), lines[i]) << type;
        ++round_trips;
      }
    }
    EXPECT_GT(unknown_lines, 0u) << "the Spanish and odd lines should meet unknown characters";
    EXPECT_GT(round_trips, 250u);
  }
}

TEST_F(SentencePieceTest, SpecialIdsComeFromTheModel) {
  // spm_train's defaults: unk 0, bos 1 "<s>", eos 2 "</s>", no pad; the BPE model was trained with
  // --pad_id=3.
  const auto unigram = SentencePieceTokenizer::load(model("unigram"));
  EXPECT_EQ(unigram.unk_id(), 0);
  EXPECT_EQ(unigram.bos_id(), 1);
  EXPECT_EQ(unigram.eos_id(), 2);
  EXPECT_EQ(unigram.pad_id(), -1);
  EXPECT_EQ(unigram.vocab_size(), 500);
  EXPECT_EQ(unigram.id_to_token(1), "<s>");
  EXPECT_EQ(unigram.token_to_id("</s>"), 2);
  EXPECT_EQ(unigram.token_to_id("<unk>"), 0);
  EXPECT_EQ(unigram.token_to_id("no such piece"), std::nullopt);
  EXPECT_EQ(unigram.id_to_token(500), std::nullopt);
  EXPECT_EQ(unigram.kind(), "SentencePiece");
  const auto bpe = SentencePieceTokenizer::load(model("bpe"));
  EXPECT_EQ(bpe.pad_id(), 3);
  EXPECT_EQ(bpe.id_to_token(3), "<pad>");
  EXPECT_EQ(bpe.unk_id(), 0);
}

TEST_F(SentencePieceTest, DecodeSpecialTokens) {
  const auto tokenizer = SentencePieceTokenizer::load(model("unigram"));
  Ids ids = tokenizer.encode("God said, let there be light.");
  ids.insert(ids.begin(), tokenizer.bos_id());
  ids.push_back(tokenizer.eos_id());
  EXPECT_EQ(tokenizer.decode(ids), "God said, let there be light.");
  EXPECT_EQ(tokenizer.decode(ids, false), "<s>God said, let there be light.</s>");
  EXPECT_NE(error_of([&] { tokenizer.decode(Ids{500}); }).find("500"), std::string::npos);
  EXPECT_NE(error_of([&] { tokenizer.encode("bad \xC3"); }).find("byte offset 4"), std::string::npos);
}

TEST_F(SentencePieceTest, JsonWrapperRoundTrip) {
  const auto tokenizer = SentencePieceTokenizer::load(model("bpe"));
  const auto json = nlohmann::json::parse(tokenizer.to_json());
  EXPECT_EQ(json["tfm_sentencepiece"], 1);
  EXPECT_EQ(base64_decode(json["model"].get<std::string>()), io::read_file(model("bpe")));
  const auto again = load_tokenizer_json(tokenizer.to_json(), "checkpoint");
  EXPECT_EQ(again->kind(), "SentencePiece");
  EXPECT_EQ(again->to_json(), tokenizer.to_json());
  EXPECT_EQ(again->hash(), tokenizer.hash());
  EXPECT_NE(SentencePieceTokenizer::load(model("unigram")).hash(), tokenizer.hash());
  for (const std::string& line : corpus_side("valid.tsv", 0, 50))
    EXPECT_EQ(again->encode(line), tokenizer.encode(line));
  EXPECT_EQ(again->pad_id(), 3);
}

TEST_F(SentencePieceTest, CorruptModelsAreClearErrors) {
  const std::string bytes = io::read_file(model("unigram"));
  const std::string dir = test::temp_dir("sentencepiece-bad");
  const std::string garbage = dir + "/garbage.model";
  io::write_file_atomic(garbage, "this is not a protobuf at all \xFF\xFF\xFF\xFF");
  EXPECT_NE(
      error_of([&] { SentencePieceTokenizer::load(garbage); }).find(garbage + ": not a SentencePiece model"),
      std::string::npos);
  for (size_t size : {size_t(0), size_t(1), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    const std::string truncated = dir + "/truncated" + std::to_string(size) + ".model";
    io::write_file_atomic(truncated, bytes.substr(0, size));
    EXPECT_NE(error_of([&] {
                SentencePieceTokenizer::load(truncated);
              }).find(truncated + ": not a SentencePiece model"),
              std::string::npos)
        << size;
  }
  EXPECT_NE(
      error_of([&] { SentencePieceTokenizer::load(dir + "/missing.model"); }).find(dir + "/missing.model"),
      std::string::npos);
}

TEST_F(SentencePieceTest, BadWrapperJson) {
  const std::string model_base64 = base64_encode(io::read_file(model("unigram")));
  EXPECT_EQ(error_of([&] {
              load_tokenizer_json(nlohmann::json{{"tfm_sentencepiece", 2}, {"model", model_base64}}.dump(),
                                  "c.json");
            }),
            "c.json: tfm_sentencepiece version 2 is not supported (only 1)");
  EXPECT_EQ(error_of([&] { load_tokenizer_json(R"({"tfm_sentencepiece": 1})", "c.json"); }),
            "c.json: \"model\" is missing or not a string");
  EXPECT_EQ(error_of([&] { load_tokenizer_json(R"({"tfm_sentencepiece": 1, "model": "ab!d"})", "c.json"); }),
            "c.json: model: invalid base64 character at offset 2");
  EXPECT_NE(error_of([&] {
              load_tokenizer_json(
                  nlohmann::json{{"tfm_sentencepiece", 1}, {"model", base64_encode("junk")}}.dump(),
                  "c.json");
            }).find("c.json: not a SentencePiece model"),
            std::string::npos);
}

TEST(Base64, Rfc4648TestVectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += char(b);
  EXPECT_EQ(base64_decode(base64_encode(all_bytes)), all_bytes);
  EXPECT_EQ(error_of([] { base64_decode("Zm9"); }), "base64 text has length 3, not a multiple of 4");
  EXPECT_EQ(error_of([] { base64_decode("Zm=v"); }), "invalid base64 character at offset 2");
  EXPECT_EQ(error_of([] { base64_decode("Zg==Zm9v"); }), "invalid base64 character at offset 2");
}

}  // namespace
}  // namespace tfm::tokenize
