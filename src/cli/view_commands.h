// tfm attention and tfm report: HTML views of a model's attention and of a training run.
#pragma once

#include <string>

namespace tfm::cli {

// Heatmaps of every layer's and head's attention probabilities for one input: encoder self-attention,
// decoder self-attention and cross-attention (encoder-decoder; the target is `tgt`, or the greedy
// translation of `src` when `tgt` is empty), or the one stack's self-attention (decoder-only: the text
// `src`). Writes a self-contained HTML page to `out`.
int cmd_attention(const std::string& model_path, const std::string& src, const std::string& tgt,
                  const std::string& out);

// One self-contained HTML page about a run folder: curves of the training loss, learning rate,
// tokens/s and validation loss / BLEU / chrF, the final test scores, the configuration and the sample
// translations of the last evaluation. Written to `out` (default RUN_DIR/report.html).
int cmd_report(const std::string& run_dir, const std::string& out);

}  // namespace tfm::cli
