// The trained Marian model in shared/models/mt-en-es (a Hugging Face folder, float16 weights): greedy and
// 4-beam translations of the whole Bible test set equal what Hugging Face's generate produced
// (test.beam1.es, test.beam4.es) on at least 99% of lines (a float near-tie may flip a line; the differing
// lines are printed), and their BLEU is within 0.1 of the reference scores (models/README.md). Marian's
// decoding rules apply: pad never generated, EOS forced at the length limit, decoder start = pad, the
// tokenizer's "$A </s>" template framing the source, max 256 new tokens.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "infer/translate.h"
#include "metrics/bleu.h"
#include "test_support.h"

namespace tfm {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class PretrainedTranslation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new infer::TranslationModel(infer::load_translation_model(models() + "/mt-en-es"));
    for (const std::string& pair : lines_of(test::shared_dir() + "/data/bible-en-es/test.tsv")) {
      sources_.push_back(pair.substr(0, pair.find('\t')));
      references_.push_back(pair.substr(pair.find('\t') + 1));
    }
  }
  static void TearDownTestSuite() { delete model_; }
  static std::string models() { return test::shared_dir() + "/models"; }

  // Translates the test set and compares with the reference file line by line and by BLEU.
  static void check(int64_t beams, int64_t batch, const std::string& reference_file, double reference_bleu) {
    ASSERT_TRUE(model_->tokenizer_frames_source);
    infer::TranslateOptions o;
    o.add_bos_eos = false;
    o.beams = beams;
    o.batch_size = batch;
    o.max_new_tokens = 256;  // as the reference run (models/README.md)
    const auto t0 = std::chrono::steady_clock::now();
    infer::TranslateStats stats;
    const std::vector<std::string> got =
        infer::translate(*model_->model, *model_->src, *model_->tgt, sources_, o, &stats);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::vector<std::string> want = lines_of(models() + "/mt-en-es/" + reference_file);
    ASSERT_EQ(want.size(), sources_.size());
    size_t same = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i] == want[i]) {
        ++same;
        continue;
      }
      std::printf("  line %zu differs:\n    src:  %s\n    tfm:  %s\n    hf:   %s\n", i + 1,
                  sources_[i].c_str(), got[i].c_str(), want[i].c_str());
    }
    const double bleu = metrics::corpus_bleu(got, {references_}).score;
    std::printf(
        "  mt-en-es beam %lld batch %lld: %zu of %zu lines equal %s; BLEU %.2f (reference %.2f); "
        "%lld tokens in %.1f s\n",
        static_cast<long long>(beams), static_cast<long long>(batch), same, want.size(),
        reference_file.c_str(), bleu, reference_bleu, static_cast<long long>(stats.generated_tokens),
        seconds);
    EXPECT_GE(double(same), 0.99 * double(want.size()));
    EXPECT_NEAR(bleu, reference_bleu, 0.1);
  }

  static infer::TranslationModel* model_;
  static std::vector<std::string> sources_, references_;
};

infer::TranslationModel* PretrainedTranslation::model_ = nullptr;
std::vector<std::string> PretrainedTranslation::sources_, PretrainedTranslation::references_;

TEST_F(PretrainedTranslation, GreedyMatchesHuggingFaceOnTheTestSet) { check(1, 64, "test.beam1.es", 28.40); }

TEST_F(PretrainedTranslation, Beam4MatchesHuggingFaceOnTheTestSet) { check(4, 32, "test.beam4.es", 30.98); }

TEST_F(PretrainedTranslation, EmptyLineTranslatesToEmptyLine) {
  infer::TranslateOptions o;
  o.add_bos_eos = false;
  EXPECT_EQ(infer::translate(*model_->model, *model_->src, *model_->tgt, {"", "In the beginning", ""}, o)[0],
            "");
  EXPECT_EQ(infer::translate(*model_->model, *model_->src, *model_->tgt, {""}, o),
            std::vector<std::string>{""});
}

}  // namespace
}  // namespace tfm
