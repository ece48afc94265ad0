// WordPiece against the Hugging Face fixture (wordpiece_cases.json: ids and tokens HF's BERT tokenizer gave),
// loaded both from the BERT vocab.txt and from HF's tokenizer.json, plus hand-computed cases for each rule
// of HF's normalizer, pre-tokenizer, model and decoder.
#include "tokenize/wordpiece.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "test_support.h"
#include "tokenize/bert_normalizer.h"
#include "tokenize/bert_pre_tokenizer.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {
namespace {

using Ids = std::vector<int32_t>;
using Words = std::vector<std::string_view>;
using test::error_of;

std::string fixture(const std::string& name) { return test::shared_dir() + "/fixtures/tokenizers/" + name; }

const nlohmann::json& cases() {
  static const nlohmann::json json = nlohmann::json::parse(io::read_file(fixture("wordpiece_cases.json")));
  return json;
}

std::unique_ptr<Tokenizer> from_fixture_json() {
  const std::string path = fixture("wordpiece.tokenizer.json");
  return load_tokenizer_json(io::read_file(path), path);
}

std::string write_temp(const std::string& name, const std::string& contents) {
  const std::string path = test::temp_dir("wordpiece") + "/" + name;
  io::write_file_atomic(path, contents);
  return path;
}

void expect_fixture_cases(const Tokenizer& tokenizer) {
  ASSERT_GE(cases()["cases"].size(), 400u);
  for (const auto& c : cases()["cases"]) {
    const std::string text = c["text"];
    const Ids ids = tokenizer.encode(text);
    EXPECT_EQ(ids, c["ids"].get<Ids>()) << text;
    std::vector<std::string> tokens;
    for (int32_t id : ids) tokens.push_back(tokenizer.id_to_token(id).value_or("?"));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>()) << text;
  }
}

TEST(WordPiece, FixtureFromVocabTxt) {
  expect_fixture_cases(WordPieceTokenizer::from_vocab_file(fixture(cases()["vocab"])));
}

TEST(WordPiece, FixtureFromTokenizerJson) {
  const auto tokenizer = from_fixture_json();
  EXPECT_EQ(tokenizer->kind(), "WordPiece");
  expect_fixture_cases(*tokenizer);
}

TEST(WordPiece, ToJsonIsHuggingFacesFile) {
  // HF wrote the fixture's tokenizer.json for the same vocab.txt, with strip_accents set explicitly: both
  // our loads must write the same JSON document back.
  const auto want = nlohmann::json::parse(io::read_file(fixture("wordpiece.tokenizer.json")));
  EXPECT_TRUE(nlohmann::json::parse(from_fixture_json()->to_json()) == want);
  WordPieceOptions options;
  options.normalizer.strip_accents = true;
  const auto from_txt = WordPieceTokenizer::from_vocab_file(fixture("wordpiece-vocab.txt"), options);
  EXPECT_TRUE(nlohmann::json::parse(from_txt.to_json()) == want);
  options.normalizer.strip_accents.reset();  // the default (follow lowercase) is written as null
  EXPECT_TRUE(
      nlohmann::json::parse(WordPieceTokenizer::from_vocab_file(fixture("wordpiece-vocab.txt"), options)
                                .to_json())["normalizer"]["strip_accents"]
          .is_null());
}

TEST(WordPiece, JsonRoundTrip) {
  const auto tokenizer = from_fixture_json();
  const auto again = load_tokenizer_json(tokenizer->to_json(), "again");
  EXPECT_EQ(again->to_json(), tokenizer->to_json());
  EXPECT_EQ(again->hash(), tokenizer->hash());
  const std::string text = "Jacob said to them, “My relatives, where are you from?” [SEP]";
  EXPECT_EQ(again->encode(text), tokenizer->encode(text));
}

TEST(WordPiece, SpecialIds) {
  const auto tokenizer = from_fixture_json();  // [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->unk_id(), 1);
  EXPECT_EQ(tokenizer->bos_id(), 2);
  EXPECT_EQ(tokenizer->eos_id(), 3);
  EXPECT_EQ(tokenizer->vocab_size(), 6000);
}

TEST(WordPiece, SpecialTokensInTextAreMatchedBeforeNormalizing) {
  const auto tokenizer = from_fixture_json();
  // "[SEP]" is one token, even inside a word; "[sep]" is not special (matching is on the raw text), so it is
  // "[" "sep" "]", and neither bracket is in the vocabulary.
  EXPECT_EQ(tokenizer->encode("the[SEP]the [MASK]"), (Ids{75, 3, 75, 4}));
  EXPECT_EQ(tokenizer->encode("[sep]"), (Ids{1, 1109, 1}));
}

// A vocabulary of its own, for the model's rules: {"[UNK]", ...} with ids in order.
WordPieceTokenizer small(std::vector<std::string> vocab, WordPieceOptions options = {}) {
  return WordPieceTokenizer(std::move(vocab), std::move(options));
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  // The classic example from BERT's tokenization.py: "unaffable" -> un ##aff ##able.
  const auto tokenizer = small({"[UNK]", "un", "##aff", "##able", "##a", "##ff"});
  EXPECT_EQ(tokenizer.encode("unaffable"), (Ids{1, 2, 3}));
  // No backtracking: with "una" the greedy cut is "una" + "ffable", and "##ffable" / "##f..." do not
  // exist, so the whole word is unknown although un ##aff ##able would spell it.
  const auto greedy = small({"[UNK]", "un", "una", "##aff", "##able"});
  EXPECT_EQ(greedy.encode("unaffable"), (Ids{0}));
  // One unknown rest makes the whole word [UNK], not just the rest; other words are unaffected.
  EXPECT_EQ(tokenizer.encode("unaffablez un"), (Ids{0, 1}));
}

TEST(WordPiece, WordLongerThanMaxCharsIsUnknown) {
  const auto tokenizer = WordPieceTokenizer::from_vocab_file(fixture("wordpiece-vocab.txt"));
  const std::string hundred(100, 'a');
  const Ids ids = tokenizer.encode(hundred);
  EXPECT_GT(ids.size(), 1u);  // a + ##a pieces
  EXPECT_EQ(tokenizer.decode(ids), hundred);
  EXPECT_EQ(tokenizer.encode(hundred + "a"), (Ids{1}));
  EXPECT_EQ(tokenizer.encode("the " + hundred + "a the"), (Ids{75, 1, 75}));
  // The limit counts characters, not bytes: "жжж" is 3 characters (6 bytes).
  WordPieceOptions options;
  options.max_input_chars_per_word = 3;
  const auto cyrillic = small({"[UNK]", "ж", "##ж"}, options);
  EXPECT_EQ(cyrillic.encode("жжж"), (Ids{1, 2, 2}));
  EXPECT_EQ(cyrillic.encode("жжжж"), (Ids{0}));
}

TEST(WordPiece, TemplateFromOptions) {
  WordPieceOptions options;
  options.template_prefix = {"[CLS]"};
  options.template_suffix = {"[SEP]"};
  const auto tokenizer = WordPieceTokenizer::from_vocab_file(fixture("wordpiece-vocab.txt"), options);
  EXPECT_EQ(tokenizer.encode("the world"), (Ids{2, 75, 1773, 3}));
  EXPECT_EQ(tokenizer.encode("the world", false), (Ids{75, 1773}));
  EXPECT_EQ(tokenizer.encode(""), (Ids{2, 3}));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("the world")), "the world");
  // Written as HF's TemplateProcessing, which reads back to the same template.
  const auto json = nlohmann::json::parse(tokenizer.to_json());
  EXPECT_EQ(json["post_processor"]["type"], "TemplateProcessing");
  EXPECT_EQ(load_tokenizer_json(tokenizer.to_json(), "t")->encode("the world"), (Ids{2, 75, 1773, 3}));
}

nlohmann::json fixture_json_with(const char* key, nlohmann::json value) {
  auto json = nlohmann::json::parse(io::read_file(fixture("wordpiece.tokenizer.json")));
  json[key] = std::move(value);
  return json;
}

TEST(WordPiece, PostProcessorsFromJson) {
  // As bert-base-uncased's tokenizer.json has it (ids as this vocabulary has them).
  const auto bert_template = nlohmann::json::parse(R"({"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
             {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
    "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                       "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}})");
  const auto bert_processing = nlohmann::json::parse(R"({"type": "BertProcessing", "sep": ["[SEP]", 3],
                                                         "cls": ["[CLS]", 2]})");
  for (const auto& processor : {bert_template, bert_processing}) {
    const auto tokenizer = load_tokenizer_json(fixture_json_with("post_processor", processor).dump(), "t");
    EXPECT_EQ(tokenizer->encode("Hello world"), (Ids{2, 1813, 199, 1773, 3})) << processor["type"];
    EXPECT_EQ(nlohmann::json::parse(tokenizer->to_json())["post_processor"], processor);  // kept as it was
  }
  auto wrong_id = bert_processing;
  wrong_id["cls"][1] = 7;
  EXPECT_NE(error_of([&] {
              load_tokenizer_json(fixture_json_with("post_processor", wrong_id).dump(), "t.json");
            }).find("t.json: post_processor gives '[CLS]' the id 7; the vocabulary has 2"),
            std::string::npos);
}

TEST(WordPiece, Decode) {
  const auto tokenizer = from_fixture_json();
  EXPECT_EQ(tokenizer->decode(Ids{1813, 199, 1773, 10}), "hello world.");
  EXPECT_EQ(tokenizer->decode(Ids{2, 75, 8, 75, 3}), "the, the");
  EXPECT_EQ(tokenizer->decode(Ids{2, 75, 3}, false), "[CLS] the [SEP]");
  EXPECT_EQ(tokenizer->decode(Ids{}), "");
  // The first piece keeps its prefix (HF's decoder strips it only after a first token).
  EXPECT_EQ(tokenizer->decode(Ids{49, 75}), "##s the");
  EXPECT_EQ(tokenizer->decode(Ids{2359, 44, 33}), "isn ’ t");  // no cleanup rule for ’
  EXPECT_NE(error_of([&] { tokenizer->decode(Ids{6000}); }).find("6000"), std::string::npos);
}

TEST(WordPiece, DecodeCleanupIsPerPiece) {
  // HF's cleanup runs on each piece after its space is added, so " 's" joins a piece "'s", but the
  // rule " ' " can never match one piece "'" (it has no space after it).
  const auto tokenizer = small({"[UNK]", "it", "'s", "'", "s", "n't", "do", "?", "!", "##s"});
  EXPECT_EQ(tokenizer.decode(Ids{1, 2}), "it's");
  EXPECT_EQ(tokenizer.decode(Ids{1, 3, 4}), "it ' s");
  EXPECT_EQ(tokenizer.decode(Ids{6, 5, 7, 8}), "don't?!");
  EXPECT_EQ(tokenizer.decode(Ids{1, 9}), "its");
  WordPieceOptions no_cleanup;
  no_cleanup.decoder = WordPieceDecoderOptions{.prefix = "##", .cleanup = false};
  const auto raw = small({"[UNK]", "it", "'s", "?", "##s"}, no_cleanup);
  EXPECT_EQ(raw.decode(Ids{1, 2, 3, 4}), "it 's ?s");
  WordPieceOptions no_decoder;
  no_decoder.decoder.reset();
  EXPECT_EQ(small({"[UNK]", "it", "##s"}, no_decoder).decode(Ids{1, 2}), "it ##s");
}

BertNormalizerOptions normalizer(bool lowercase, std::optional<bool> strip_accents = std::nullopt) {
  BertNormalizerOptions options;
  options.lowercase = lowercase;
  options.strip_accents = strip_accents;
  return options;
}

TEST(BertNormalizer, CleanText) {
  const BertNormalizerOptions keep_case = normalizer(false);
  // NUL, U+FFFD, control (BEL) and format characters (U+200B zero width space: Cf) go.
  EXPECT_EQ(bert_normalize(std::string("a\0b\uFFFDc\u200Bd\ae", 13), keep_case), "abcde");
  // Every whitespace character becomes ' '.
  EXPECT_EQ(bert_normalize("a\tb\nc\rd\u00A0e\u3000f\u2028g", keep_case), "a b c d e f g");
  // Private use: only the blocks' first and last code points (UnicodeData.txt lists no others) are "other".
  EXPECT_EQ(bert_normalize("a\uE000\uE001\uF8FF", keep_case), "a\uE001");
  // Characters newer than Unicode 8.0 are in no category for HF: U+08E2 (Cf, Unicode 9.0) stays.
  EXPECT_EQ(bert_normalize("a\u08E2", keep_case), "a\u08E2");
  BertNormalizerOptions no_cleaning = keep_case;
  no_cleaning.clean_text = false;
  EXPECT_EQ(bert_normalize("a\u200Bb\tc", no_cleaning), "a\u200Bb\tc");
}

TEST(BertNormalizer, ChineseCharacters) {
  const BertNormalizerOptions keep_case = normalizer(false);
  EXPECT_EQ(bert_normalize("你好x", keep_case), " 你  好 x");
  // HF's ranges: U+2B820..U+2B91F (CJK Extension E's start) is not among them, U+2B920 is.
  EXPECT_EQ(bert_normalize("\U0002B820\U0002B920", keep_case), "\U0002B820 \U0002B920 ");
  // Hiragana and Hangul are not CJK ideographs.
  EXPECT_EQ(bert_normalize("こん안", keep_case), "こん안");
}

TEST(BertNormalizer, AccentsAndCase) {
  EXPECT_EQ(bert_normalize("Café RÉSUMÉ naïve", {}), "cafe resume naive");
  // Lowercasing is per character: no final sigma.
  EXPECT_EQ(bert_normalize("ΟΔΟΣ", {}), "οδοσ");
  // Accents are stripped before lowercasing: İ -> I + U+0307 -> I -> i.
  EXPECT_EQ(bert_normalize("İ", {}), "i");
  // Without stripping, İ lowercases to i + U+0307 (SpecialCasing.txt).
  EXPECT_EQ(bert_normalize("İ", normalizer(true, false)), "i\u0307");
  // strip_accents defaults to lowercase.
  EXPECT_EQ(bert_normalize("Café", normalizer(false)), "Café");
  EXPECT_EQ(bert_normalize("Café", normalizer(false, true)), "Cafe");
  // Mn as Unicode 8.0 had it: U+0D00 (Mn since 10.0) stays; U+1734 (Mn in 8.0, Mc now) goes; U+1885
  // (Lo in 8.0, Mn now) stays.
  EXPECT_EQ(bert_normalize("a\u0D00", {}), "a\u0D00");
  EXPECT_EQ(bert_normalize("\u1720\u1734", {}), "\u1720");
  EXPECT_EQ(bert_normalize("\u1885", {}), "\u1885");
}

TEST(BertNormalizer, InvalidUtf8) {
  EXPECT_NE(error_of([] { bert_normalize("ab\xC3", {}); }).find("byte offset 2"), std::string::npos);
}

TEST(BertPreTokenizer, SplitsWhitespaceAndIsolatesPunctuation) {
  // The example of HF's own test.
  EXPECT_EQ(bert_pre_tokenize("Hey friend!     How are you?!?"),
            (Words{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
  // ASCII symbols count as punctuation; other symbols (€ Sc, ° So) do not.
  EXPECT_EQ(bert_pre_tokenize("$5+x=y^2 a€b 3°"),
            (Words{"$", "5", "+", "x", "=", "y", "^", "2", "a€b", "3°"}));
  EXPECT_EQ(bert_pre_tokenize("¿Qué?—dijo «sí»"), (Words{"¿", "Qué", "?", "—", "dijo", "«", "sí", "»"}));
  // P* as Unicode 8.0 had it: U+166D (Po then, So now) splits; U+1E95E (Po, Unicode 9.0) does not.
  EXPECT_EQ(bert_pre_tokenize("a\u166Db"), (Words{"a", "\u166D", "b"}));
  EXPECT_EQ(bert_pre_tokenize("a\U0001E95Eb"), (Words{"a\U0001E95Eb"}));
  EXPECT_EQ(bert_pre_tokenize(" \u2003 "), Words{});
}

TEST(WordPiece, VocabFileErrors) {
  const std::string duplicate = write_temp("dup.txt", "[UNK]\nthe\n##s\nthe\n");
  EXPECT_EQ(error_of([&] { WordPieceTokenizer::from_vocab_file(duplicate); }),
            duplicate + ":4: token 'the' already on line 2");
  const std::string no_unk = write_temp("no_unk.txt", "[PAD]\nthe\n");
  EXPECT_EQ(error_of([&] { WordPieceTokenizer::from_vocab_file(no_unk); }),
            no_unk + ": unk token '[UNK]' is not in the vocabulary");
  const std::string empty_line = write_temp("empty.txt", "[UNK]\n\nthe\n");
  EXPECT_EQ(error_of([&] { WordPieceTokenizer::from_vocab_file(empty_line); }),
            empty_line + ":2: empty line (each line must hold one token)");
  const std::string bad_utf8 = write_temp("utf8.txt", "[UNK]\nab\xFF\n");
  EXPECT_NE(error_of([&] { WordPieceTokenizer::from_vocab_file(bad_utf8); }).find(":2: invalid UTF-8"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              WordPieceTokenizer::from_vocab_file("/nonexistent/vocab.txt");
            }).find("/nonexistent/vocab.txt"),
            std::string::npos);
  // CRLF line ends are not part of the tokens, and the last line may lack its "\n".
  const std::string crlf = write_temp("crlf.txt", "[UNK]\r\nthe\r\n##s");
  EXPECT_EQ(WordPieceTokenizer::from_vocab_file(crlf).encode("thes the"), (Ids{1, 2, 1}));
}

TEST(WordPiece, JsonErrors) {
  const std::string text = io::read_file(fixture("wordpiece.tokenizer.json"));
  EXPECT_NE(error_of([&] {
              load_tokenizer_json(text.substr(0, text.size() / 2), "half.json");
            }).find("half.json: invalid tokenizer.json"),
            std::string::npos);
  auto no_unk = nlohmann::json::parse(text);
  no_unk["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(error_of([&] { load_tokenizer_json(no_unk.dump(), "t.json"); }),
            "t.json: unk token '<unk>' is not in the vocabulary");
  EXPECT_EQ(
      error_of([&] {
        load_tokenizer_json(fixture_json_with("normalizer", {{"type", "Lowercase"}}).dump(), "t.json");
      }),
      "t.json: normalizer {\"type\":\"Lowercase\"} is not supported with WordPiece (only BertNormalizer)");
  auto bad_flag = nlohmann::json::parse(text);
  bad_flag["normalizer"]["lowercase"] = "yes";
  EXPECT_EQ(error_of([&] { load_tokenizer_json(bad_flag.dump(), "t.json"); }),
            "t.json: normalizer.lowercase is \"yes\", not true or false");
  auto lstrip = nlohmann::json::parse(text);
  lstrip["added_tokens"][4]["lstrip"] = true;
  EXPECT_EQ(error_of([&] { load_tokenizer_json(lstrip.dump(), "t.json"); }),
            "t.json: added token '[MASK]': lstrip is not supported");
}

TEST(WordPiece, EncodeRejectsInvalidUtf8) {
  const auto tokenizer = from_fixture_json();
  EXPECT_NE(error_of([&] { tokenizer->encode("ok \xE2\x80"); }).find("byte offset 3"), std::string::npos);
}

}  // namespace
}  // namespace tfm::tokenize
