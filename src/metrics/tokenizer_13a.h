// sacreBLEU's default BLEU tokenizer '13a' (a re-implementation of mteval-v13a.pl's tokenization), with
// the rules hand-coded instead of regular expressions. Source of the rules: sacreBLEU 2.x
// tokenizers/tokenizer_13a.py and tokenizer_re.py, plus the sent.rstrip() that BLEU applies first.
#pragma once

#include <string>
#include <string_view>

namespace tfm::metrics {

// Tokens of `line` joined by single spaces, exactly as sacreBLEU's BLEU(tokenize='13a') preprocesses a
// segment:
//   1. strip trailing whitespace (Python str.rstrip());
//   2. remove "<skipped>" and "-\n", turn "\n" into " ";
//   3. unescape &quot; &amp; &lt; &gt; (in this order, each over the whole line);
//   4. put spaces around each ASCII symbol in  !"#$%&()*+/:;<=>?@[\]^_`{|}~  (not ' , - . or letters);
//   5. split '.' and ',' off a preceding non-digit, then off a following non-digit (so "3.5" and "1,000"
//      stay whole, "end." and ",x" split), and '-' off a preceding digit ("1990-91" -> "1990 - 91");
//   6. collapse whitespace (Python str.split(), Unicode whitespace included) to single spaces.
// Each rule of 5 is a left-to-right scan over non-overlapping two-character matches, as re.sub does.
std::string tokenize_13a(std::string_view line);

}  // namespace tfm::metrics
