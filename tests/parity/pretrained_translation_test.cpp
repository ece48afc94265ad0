// The trained Marian model in shared/models/mt-en-es (a Hugging Face folder, float16 weights): greedy
// translations of the first lines of the Bible test set equal what Hugging Face's generate produced
// (test.beam1.es), with Marian's decoding rules (pad never generated, EOS forced at the length limit,
// decoder start = pad) and the tokenizer's "$A </s>" template framing the source.
#include <gtest/gtest.h>

#include <fstream>

#include "infer/translate.h"
#include "test_support.h"

namespace tfm {
namespace {

std::vector<std::string> first_lines(const std::string& path, size_t n) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<std::string> out;
  for (std::string line; out.size() < n && std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(PretrainedTranslation, GreedyMatchesHuggingFaceOnTheFirstTestLines) {
  const std::string models = test::shared_dir() + "/models/mt-en-es";
  const size_t n = 20;  // the whole file waits for the KV cache
  infer::TranslationModel m = infer::load_translation_model(models);
  ASSERT_TRUE(m.tokenizer_frames_source);
  std::vector<std::string> sources;
  for (const std::string& pair : first_lines(test::shared_dir() + "/data/bible-en-es/test.tsv", n))
    sources.push_back(pair.substr(0, pair.find('\t')));
  std::vector<std::string> want = first_lines(models + "/test.beam1.es", n);
  ASSERT_EQ(want.size(), n);
  infer::TranslateOptions o;
  o.add_bos_eos = false;
  o.max_new_tokens = 256;
  std::vector<std::string> got = infer::translate(*m.model, *m.src, *m.tgt, sources, o);
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(got[i], want[i]) << "line " << i + 1 << ": " << sources[i];
    same += got[i] == want[i];
  }
  std::printf("  mt-en-es greedy: %zu of %zu lines equal test.beam1.es\n", same, n);
}

TEST(PretrainedTranslation, EmptyLineTranslatesToEmptyLine) {
  infer::TranslationModel m = infer::load_translation_model(test::shared_dir() + "/models/mt-en-es");
  infer::TranslateOptions o;
  o.add_bos_eos = false;
  EXPECT_EQ(infer::translate(*m.model, *m.src, *m.tgt, {""}, o), std::vector<std::string>{""});
}

}  // namespace
}  // namespace tfm
