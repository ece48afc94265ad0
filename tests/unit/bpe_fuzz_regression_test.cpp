// tokenizer.json inputs that fuzz/fuzz_tokenizer_json found or that review of its findings showed, each
// reduced to the smallest document that shows the bug.
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {
namespace {

// A byte-level BPE tokenizer.json with the model vocabulary {"<pad>": 0, "a": 1} and the given
// added_tokens and post_processor (JSON texts).
std::string bpe_json(const std::string& added_tokens, const std::string& post_processor) {
  return R"({"added_tokens": )" + added_tokens + R"(, "post_processor": )" + post_processor +
         R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "vocab": {"<pad>": 0, "a": 1}, "merges": []}})";
}

std::string template_ending_with(int id) {
  return R"({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}],
             "special_tokens": {"</s>": {"id": "</s>", "ids": [)" +
         std::to_string(id) + "]}}}";
}

// An added token that names a model token ("<pad>", id 0) does not make the vocabulary longer: a
// post-processor id equal to the vocabulary's size was accepted, and encode() then produced it.
TEST(BpeFuzzRegression, TemplateIdPastVocabularyIsRejected) {
  const std::string pad = R"([{"id": 0, "content": "<pad>", "special": true}])";
  const std::string message =
      test::error_of([&] { load_tokenizer_json(bpe_json(pad, template_ending_with(2)), "t.json"); });
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
  EXPECT_NE(message.find("not a token id in [0, 2)"), std::string::npos) << message;

  // With a token added past the vocabulary, id 2 exists and the template may use it.
  const std::string pad_and_eos = R"([{"id": 0, "content": "<pad>", "special": true},
                                      {"id": 2, "content": "</s>", "special": true}])";
  const auto tokenizer = load_tokenizer_json(bpe_json(pad_and_eos, template_ending_with(2)), "t.json");
  EXPECT_EQ(tokenizer->vocab_size(), 3);
  EXPECT_EQ(tokenizer->encode("a"), (std::vector<int32_t>{1, 2}));
}

// An added token's id beyond int32 was narrowed silently (2^32 became 0, the id of "<pad>").
TEST(BpeFuzzRegression, AddedTokenIdBeyondInt32IsRejected) {
  const std::string pad = R"([{"id": 4294967296, "content": "<pad>", "special": true}])";
  const std::string message = test::error_of([&] { load_tokenizer_json(bpe_json(pad, "null"), "t.json"); });
  EXPECT_NE(message.find("added_tokens[0]: id 4294967296 is not a token id"), std::string::npos) << message;
}

}  // namespace
}  // namespace tfm::tokenize
