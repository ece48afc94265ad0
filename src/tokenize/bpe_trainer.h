// Byte-level BPE training, reproducing Hugging Face tokenizers' BpeTrainer (bpe/trainer.rs) with
// initial_alphabet = ByteLevel.alphabet() and no limit_alphabet, continuing_subword_prefix,
// end_of_word_suffix or max_token_length. The result, merge for merge and id for id:
//  1. Words: every line is split into GPT-2 pre-tokens (byte_level.h); each distinct pre-token is a word
//     with its count. Added/special tokens in the text are not cut out (Hugging Face trains on the
//     normalized, pre-tokenized text only).
//  2. Ids: the special tokens first, in the order given (a repeat is dropped); then the 256 alphabet
//     characters in code point order (the bytes '!'..'~' first, U+0100.. 'Ā' onwards last); then one new
//     token per merge, in merge order.
//  3. A pair's count is the sum, over every adjacent occurrence of the pair in a word, of the word's
//     count.
//  4. Tie-breaking: each step merges the pair with the highest count; among equal counts, the pair
//     whose ids are smallest, compared as (first id, second id) (trainer.rs: Merge::cmp orders by count,
//     then by the reversed pair, in a max-heap). So on a tie the pair whose left token is oldest wins,
//     then the one whose right token is oldest: byte characters before merged tokens, and
//     among bytes the lower code point.
//  5. Stop when the vocabulary has vocab_size tokens, no pair is left, or the best count is below
//     min_frequency.
// Hugging Face updates the queue lazily, and this follows it exactly: an entry popped with a count
// that is no longer current is pushed back with the current count; a merge is applied only to the
// words its entry lists; pairs that gain occurrences get a new entry listing only the words that gained
// them; the merged pair's own count is not reset (only overlapping occurrences, as in "aaa", lower it).
// If those rules merge the same pair twice (possible only when two different merges build the same
// string), Hugging Face keeps the later rank, and so does this: the earlier duplicate is dropped.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tokenize/bpe.h"

namespace tfm::tokenize {

struct BpeTrainOptions {
  int64_t vocab_size = 30000;  // special tokens and the 256 byte characters included
  int64_t min_frequency = 0;   // a pair seen fewer times is never merged
  std::vector<std::string> special_tokens;
  bool add_prefix_space = false;  // the ByteLevel pre-tokenizer's option
};

// A tokenizer trained on `lines` (each one text, without its line break). Throws tfm::Error for a line
// that is not valid UTF-8, naming the line (1 = lines[0]) and the byte offset in it.
BpeTokenizer train_bpe(std::span<const std::string> lines, const BpeTrainOptions& options);

}  // namespace tfm::tokenize
