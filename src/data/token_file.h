// Token files: a corpus tokenised once into a binary file that training memory-maps.
//
// Layout (version 1). Integers are little-endian (the host's order: x86-64, aarch64); every section
// starts at a multiple of 8 bytes.
//   [0, 64) header
//      0  char[8]  magic "TFMTOKS\0"
//      8  u32      version (1)
//     12  u32      id_bytes: 2 (ids stored as uint16: every tokenizer has at most 65536 tokens) or 4 (int32)
//     16  u32      streams: sequences per record, 1 (a Text corpus) or 2 (ParallelTsv: source, target)
//     20  u32      0
//     24  u64      records: usable lines of the corpus
//     32  u64      tokens: ids in all sequences together
//     40  u64      meta_offset
//     48  u64      meta_bytes
//     56  u64      checksum: word_checksum (see token_file.cpp) of the whole file, these 8 bytes read as 0
//   [64, ...)      ids[tokens], id_bytes each, zero-padded to a multiple of 8 bytes
//   then           u64 offsets[records * streams + 1]: sequence k holds ids[offsets[k], offsets[k + 1]);
//                  record r's stream s is sequence r * streams + s
//   then           i64 lines[records]: the 1-based line of each record in the corpus
//   [meta_offset, meta_offset + meta_bytes)  UTF-8 JSON padded with spaces to a multiple of 8 bytes,
//                  ending the file: the source's identity {path, size, mtime_ns}, the corpus options
//                  {format, utf8}, one {hash, kind, vocab_size} per stream's tokenizer, and the
//                  CorpusStats of the read
//
// Ids carry no special tokens: batchers frame them. Opening checks the header, the sizes, the checksum,
// the offsets and every id against its tokenizer's vocabulary size, so a truncated or corrupt file is a
// tfm::Error naming it, never a crash. open_or_build() reuses a file only if the corpus (path, size,
// modification time), the options and every tokenizer's hash are those it was built from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/id_view.h"
#include "data/parallel_corpus.h"
#include "tokenize/tokenizer.h"

namespace tfm::data {

// What a token file is built from.
struct TokenFileSpec {
  std::string corpus;
  CorpusOptions options;
  // One per stream: {text tokenizer} for Text, {source, target} for ParallelTsv. encode() is called from
  // several threads at once: it must not mutate shared state.
  std::vector<const tokenize::Tokenizer*> tokenizers;
  int64_t chunk_records = 16384;  // records read and then encoded in parallel at a time (no effect on ids)
};

struct SourceIdentity {
  std::string path;  // absolute
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const SourceIdentity&) const = default;
};

// Throws tfm::Error if `path` cannot be stat'ed.
SourceIdentity source_identity(const std::string& path);

struct TokenizerIdentity {
  std::string hash;  // Tokenizer::hash()
  std::string kind;
  int32_t vocab_size = 0;
  bool operator==(const TokenizerIdentity&) const = default;
};

struct TokenFileInfo {
  SourceIdentity source;
  CorpusOptions options;
  std::vector<TokenizerIdentity> tokenizers;  // one per stream
  CorpusStats stats;
};

// What open_or_build() did.
struct CacheOutcome {
  bool built = false;
  std::string reason;  // why it (re)built: "absent", "stale: ...", "unreadable: ..."; empty when reused
};

class TokenFile {
 public:
  // Reads the corpus in chunks, encodes each chunk in parallel (OpenMP, order kept) and writes `path`
  // atomically. Holds one chunk of text and, until the end, the offsets and line numbers (16 bytes per
  // pair); the ids go to the file as they come. Throws tfm::Error for a bad corpus (see
  // parallel_corpus.h) or a write failure; `path` is then left as it was.
  static void build(const std::string& path, const TokenFileSpec& spec);
  // Maps and validates `path`; throws tfm::Error naming it if it is not a complete token file.
  static TokenFile open(const std::string& path);
  // open(path) if it was built from `spec`'s corpus, options and tokenizers; otherwise (absent, stale,
  // truncated, corrupt) builds it anew and opens that.
  static TokenFile open_or_build(const std::string& path, const TokenFileSpec& spec,
                                 CacheOutcome* outcome = nullptr);

  const std::string& path() const { return path_; }
  const TokenFileInfo& info() const { return *info_; }
  int streams() const { return streams_; }
  int id_bytes() const { return id_bytes_; }
  int64_t records() const { return records_; }
  int64_t tokens() const { return tokens_; }
  int64_t sequences() const { return records_ * streams_; }
  // Sequence k (record k / streams, stream k % streams), 0 <= k < sequences().
  IdView sequence(int64_t k) const;
  IdView ids(int64_t record, int stream) const { return sequence(record * streams_ + stream); }
  // Where sequence k starts among all ids (k = sequences() gives tokens()).
  int64_t sequence_start(int64_t k) const { return int64_t(offsets_[k]); }
  int64_t line(int64_t record) const { return lines_[record]; }
  // The records as (source, target) pairs for a BatchIterator; throws tfm::Error unless streams() == 2.
  std::shared_ptr<const PairSource> pairs() const;

 private:
  TokenFile() = default;

  std::string path_;
  std::shared_ptr<const void> mapping_;  // keeps the pointers below valid
  std::shared_ptr<const TokenFileInfo> info_;
  int streams_ = 0;
  int id_bytes_ = 0;
  int64_t records_ = 0;
  int64_t tokens_ = 0;
  const void* ids_ = nullptr;
  const uint64_t* offsets_ = nullptr;
  const int64_t* lines_ = nullptr;
};

}  // namespace tfm::data
