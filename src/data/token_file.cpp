#include "data/token_file.h"

#include <sys/stat.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace tfm::data {

static_assert(std::endian::native == std::endian::little, "token files are read in the host's byte order");

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kMagic[8] = {'T', 'F', 'M', 'T', 'O', 'K', 'S', '\0'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t id_bytes;
  uint32_t streams;
  uint32_t zero;
  uint64_t records;
  uint64_t tokens;
  uint64_t meta_offset;
  uint64_t meta_bytes;
  uint64_t checksum;
};
static_assert(sizeof(Header) == 64);

uint64_t round_up8(uint64_t n) { return (n + 7) / 8 * 8; }

// 64-bit FNV-1a applied to 8-byte words instead of bytes. Each step is a bijection of the state for a
// given word and of the word for a given state, so changing any one word always changes the result.
constexpr uint64_t kChecksumStart = 0xcbf29ce484222325ull;
uint64_t word_checksum(uint64_t state, const char* data, size_t size) {
  TFM_CHECK(size % 8 == 0, "checksum of {} bytes", size);
  for (size_t i = 0; i < size; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    state = (state ^ word) * 0x100000001b3ull;
  }
  return state;
}

// The checksum of a file: its payload, then its header with the checksum field read as 0.
uint64_t file_checksum(uint64_t payload_state, Header header) {
  header.checksum = 0;
  return word_checksum(payload_state, reinterpret_cast<const char*>(&header), sizeof header);
}

const char* format_name(CorpusFormat f) { return f == CorpusFormat::Text ? "text" : "parallel_tsv"; }
const char* utf8_name(Utf8Policy p) {
  return p == Utf8Policy::Replace ? "replace" : p == Utf8Policy::Skip ? "skip" : "error";
}

Json to_json(const TokenFileInfo& info) {
  Json tokenizers = Json::array();
  for (const TokenizerIdentity& t : info.tokenizers)
    tokenizers.push_back({{"hash", t.hash}, {"kind", t.kind}, {"vocab_size", t.vocab_size}});
  const CorpusStats& s = info.stats;
  return {{"source",
           {{"path", info.source.path}, {"size", info.source.size}, {"mtime_ns", info.source.mtime_ns}}},
          {"options",
           {{"format", format_name(info.options.format)},
            {"utf8", utf8_name(info.options.utf8)},
            {"column", info.options.column}}},
          {"tokenizers", tokenizers},
          {"stats",
           {{"lines", s.lines},
            {"records", s.records},
            {"skipped_empty_line", s.skipped_empty_line},
            {"skipped_empty_side", s.skipped_empty_side},
            {"skipped_invalid_utf8", s.skipped_invalid_utf8},
            {"replaced_invalid_utf8", s.replaced_invalid_utf8}}}};
}

TokenFileInfo info_from_json(const Json& j) {
  TokenFileInfo info;
  const Json& source = j.at("source");
  info.source = {source.at("path").get<std::string>(), source.at("size").get<uint64_t>(),
                 source.at("mtime_ns").get<int64_t>()};
  const std::string format = j.at("options").at("format").get<std::string>();
  const std::string utf8 = j.at("options").at("utf8").get<std::string>();
  for (CorpusFormat f : {CorpusFormat::ParallelTsv, CorpusFormat::Text})
    if (format == format_name(f)) info.options.format = f;
  for (Utf8Policy p : {Utf8Policy::Error, Utf8Policy::Replace, Utf8Policy::Skip})
    if (utf8 == utf8_name(p)) info.options.utf8 = p;
  if (format != format_name(info.options.format) || utf8 != utf8_name(info.options.utf8))
    fail("unknown corpus options {}", j.at("options").dump());
  info.options.column = j.at("options").value("column", 0);
  for (const Json& t : j.at("tokenizers"))
    info.tokenizers.push_back({t.at("hash").get<std::string>(), t.at("kind").get<std::string>(),
                               t.at("vocab_size").get<int32_t>()});
  const Json& s = j.at("stats");
  info.stats = {s.at("lines").get<int64_t>(),
                s.at("records").get<int64_t>(),
                s.at("skipped_empty_line").get<int64_t>(),
                s.at("skipped_empty_side").get<int64_t>(),
                s.at("skipped_invalid_utf8").get<int64_t>(),
                s.at("replaced_invalid_utf8").get<int64_t>()};
  return info;
}

std::vector<TokenizerIdentity> tokenizer_identities(const TokenFileSpec& spec) {
  const size_t streams = spec.options.format == CorpusFormat::Text ? 1 : 2;
  if (spec.tokenizers.size() != streams)
    fail("a {} token file needs {} tokenizer(s), got {}", format_name(spec.options.format), streams,
         spec.tokenizers.size());
  std::vector<TokenizerIdentity> ids;
  for (const tokenize::Tokenizer* t : spec.tokenizers) {
    TFM_CHECK(t != nullptr, "a null tokenizer");
    ids.push_back({t->hash(), std::string(t->kind()), t->vocab_size()});
  }
  return ids;
}

// Appends to an AtomicFileWriter through a buffer, and checksums what it writes.
class ChecksummedOutput {
 public:
  explicit ChecksummedOutput(io::AtomicFileWriter& file) : file_(file), buffer_(size_t(1) << 20) {}
  void append(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const size_t n = std::min(size, buffer_.size() - used_);
      std::memcpy(buffer_.data() + used_, p, n);
      used_ += n;
      p += n;
      size -= n;
      if (used_ == buffer_.size()) flush();
    }
  }
  void pad_to_8(char fill) {
    const uint64_t padding = round_up8(written()) - written();
    for (uint64_t i = 0; i < padding; ++i) append(&fill, 1);
  }
  uint64_t written() const { return flushed_ + used_; }  // bytes appended
  uint64_t checksum_state() {                            // after a pad_to_8
    flush();
    return state_;
  }

 private:
  void flush() {  // whole buffers or, at the end, padded sections: always whole words
    state_ = word_checksum(state_, buffer_.data(), used_);
    file_.write(buffer_.data(), used_);
    flushed_ += used_;
    used_ = 0;
  }

  io::AtomicFileWriter& file_;
  std::vector<char> buffer_;
  size_t used_ = 0;
  uint64_t flushed_ = 0;
  uint64_t state_ = kChecksumStart;
};

// Encodes chunk[r]'s stream s into out[r * streams + s], in parallel. The first error (in record order)
// is thrown with the corpus line.
void encode_chunk(const std::vector<SentencePair>& chunk, const TokenFileSpec& spec,
                  std::vector<std::vector<int32_t>>& out) {
  const int64_t streams = int64_t(spec.tokenizers.size());
  const int64_t n = int64_t(chunk.size()) * streams;
  out.resize(size_t(n));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t k = 0; k < n; ++k) {
    try {
      const SentencePair& record = chunk[size_t(k / streams)];
      out[size_t(k)] =
          spec.tokenizers[size_t(k % streams)]->encode(k % streams == 0 ? record.src : record.tgt);
    } catch (...) {
      errors[size_t(k)] = std::current_exception();
    }
  }
  for (int64_t k = 0; k < n; ++k) {
    if (!errors[size_t(k)]) continue;
    try {
      std::rethrow_exception(errors[size_t(k)]);
    } catch (const Error& e) {
      throw e.with_context(fmt::format("{}:{}", spec.corpus, chunk[size_t(k / streams)].line));
    }
  }
}

// Whether every id in ids[0, n) is in [0, limit).
template <typename T>
bool ids_below(const T* ids, uint64_t n, int64_t limit) {
  bool ok = true;
  for (uint64_t i = 0; i < n; ++i) ok &= int64_t(ids[i]) >= 0 && int64_t(ids[i]) < limit;
  return ok;
}

}  // namespace

SourceIdentity source_identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("{}: cannot stat: {}", path, std::strerror(errno));
  return {fs::absolute(path).lexically_normal().string(), uint64_t(st.st_size),
          int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

namespace {

// Tokenizer::hash() serialises the tokenizer, which is not free: each is hashed once per build or open.
void write_token_file(const std::string& path, const TokenFileSpec& spec,
                      std::vector<TokenizerIdentity> tokenizers) {
  TFM_CHECK(spec.chunk_records > 0, "chunk_records {}", spec.chunk_records);
  TokenFileInfo info;
  info.options = spec.options;
  info.tokenizers = std::move(tokenizers);
  info.source = source_identity(spec.corpus);  // before reading: a change while reading makes it stale
  const size_t streams = info.tokenizers.size();
  int32_t largest_vocab = 0;
  for (const TokenizerIdentity& t : info.tokenizers) largest_vocab = std::max(largest_vocab, t.vocab_size);
  const uint32_t id_bytes = largest_vocab <= 65536 ? 2 : 4;

  io::AtomicFileWriter file(path);
  const Header placeholder{};
  file.write(&placeholder, sizeof placeholder);
  ChecksummedOutput out(file);
  std::vector<uint64_t> offsets = {0};
  std::vector<int64_t> lines;
  CorpusReader reader(spec.corpus, spec.options);
  std::vector<SentencePair> chunk;
  std::vector<std::vector<int32_t>> encoded;
  std::vector<uint16_t> narrow;
  for (bool more = true; more;) {
    chunk.clear();
    SentencePair record;
    while (int64_t(chunk.size()) < spec.chunk_records && (more = reader.next(record)))
      chunk.push_back(std::move(record));
    encode_chunk(chunk, spec, encoded);
    for (size_t k = 0; k < encoded.size(); ++k) {
      const std::vector<int32_t>& ids = encoded[k];
      TFM_CHECK(ids_below(ids.data(), ids.size(), info.tokenizers[k % streams].vocab_size),
                "{} tokenizer gave an id outside its vocabulary", info.tokenizers[k % streams].kind);
      if (id_bytes == 2) {
        narrow.assign(ids.begin(), ids.end());
        out.append(narrow.data(), narrow.size() * 2);
      } else {
        out.append(ids.data(), ids.size() * 4);
      }
      offsets.push_back(offsets.back() + ids.size());
    }
    for (const SentencePair& r : chunk) lines.push_back(r.line);
  }
  info.stats = reader.stats();
  out.pad_to_8('\0');
  out.append(offsets.data(), offsets.size() * sizeof(uint64_t));
  out.append(lines.data(), lines.size() * sizeof(int64_t));
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.version = kVersion;
  header.id_bytes = id_bytes;
  header.streams = uint32_t(streams);
  header.records = lines.size();
  header.tokens = offsets.back();
  header.meta_offset = sizeof(Header) + out.written();
  const std::string meta = to_json(info).dump();
  out.append(meta.data(), meta.size());
  out.pad_to_8(' ');
  header.meta_bytes = sizeof(Header) + out.written() - header.meta_offset;
  header.checksum = file_checksum(out.checksum_state(), header);
  file.write_at(0, &header, sizeof header);
  file.commit();
}

std::optional<std::string> differences(const TokenFileInfo& built, const TokenFileSpec& spec,
                                       const std::vector<TokenizerIdentity>& tokenizers) {
  if (spec.options != built.options) return "the corpus options differ";
  const SourceIdentity now = source_identity(spec.corpus);
  if (now.path != built.source.path) return fmt::format("built from {}, not {}", built.source.path, now.path);
  if (now.size != built.source.size || now.mtime_ns != built.source.mtime_ns)
    return fmt::format("{} changed (size {} -> {}, mtime_ns {} -> {})", now.path, built.source.size, now.size,
                       built.source.mtime_ns, now.mtime_ns);
  for (size_t s = 0; s < tokenizers.size(); ++s)
    if (tokenizers[s] != built.tokenizers[s])
      return fmt::format("tokenizer {} changed (hash {} -> {})", s, built.tokenizers[s].hash,
                         tokenizers[s].hash);
  return std::nullopt;
}

}  // namespace

void TokenFile::build(const std::string& path, const TokenFileSpec& spec) {
  write_token_file(path, spec, tokenizer_identities(spec));
}

TokenFile TokenFile::open(const std::string& path) {
  return with_context(path, [&] {
    TokenFile f;
    f.path_ = path;
    const io::MappedFile m = io::map_file(path);
    if (m.size < sizeof(Header))
      fail("truncated: {} bytes, shorter than the {}-byte header", m.size, sizeof(Header));
    f.mapping_ = m.memory;
    Header h;
    std::memcpy(&h, m.data, sizeof h);
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) fail("not a tfm token file (bad magic)");
    if (h.version != kVersion)
      fail("token file version {}; this build reads version {}", h.version, kVersion);
    if ((h.id_bytes != 2 && h.id_bytes != 4) || (h.streams != 1 && h.streams != 2) || h.zero != 0)
      fail("corrupt header (id_bytes {}, streams {})", h.id_bytes, h.streams);
    // The counts are bounded by the file size before they are multiplied, so nothing below overflows.
    if (h.records > m.size || h.tokens > m.size)
      fail("corrupt header: {} records and {} ids in a file of {} bytes", h.records, h.tokens, m.size);
    const uint64_t ids_bytes = round_up8(h.tokens * h.id_bytes);
    const uint64_t offsets_at = sizeof(Header) + ids_bytes;
    const uint64_t lines_at = offsets_at + (h.records * h.streams + 1) * 8;
    const uint64_t meta_at = lines_at + h.records * 8;
    if (h.meta_offset != meta_at)
      fail("corrupt header: metadata at byte {}, expected {}", h.meta_offset, meta_at);
    uint64_t described;
    if (__builtin_add_overflow(meta_at, h.meta_bytes, &described) || described != m.size)
      fail("truncated or corrupt: {} bytes, but its header describes {} ids in {} records and {} bytes",
           m.size, h.tokens, h.records, described);
    const uint64_t payload = word_checksum(kChecksumStart, m.data + sizeof(Header), m.size - sizeof(Header));
    if (file_checksum(payload, h) != h.checksum) fail("corrupt: checksum mismatch");
    try {
      f.info_ = std::make_shared<const TokenFileInfo>(
          info_from_json(Json::parse(m.data + h.meta_offset, m.data + m.size)));
    } catch (const Json::exception& e) {
      fail("corrupt metadata: {}", e.what());
    }
    f.streams_ = int(h.streams);
    f.id_bytes_ = int(h.id_bytes);
    f.records_ = int64_t(h.records);
    f.tokens_ = int64_t(h.tokens);
    f.ids_ = m.data + sizeof(Header);
    f.offsets_ = reinterpret_cast<const uint64_t*>(m.data + offsets_at);
    f.lines_ = reinterpret_cast<const int64_t*>(m.data + lines_at);
    if (f.info_->tokenizers.size() != h.streams || f.info_->stats.records != f.records_)
      fail("corrupt: metadata does not match the header");
    const int64_t sequences = f.sequences();
    if (f.offsets_[0] != 0 || f.offsets_[sequences] != h.tokens)
      fail("corrupt: sequence offsets do not span the ids");
    for (int64_t r = 0; r < f.records_; ++r)
      if (f.lines_[r] < 1 || (r > 0 && f.lines_[r] <= f.lines_[r - 1])) fail("corrupt: line numbers");
    for (int64_t k = 0; k < sequences; ++k) {
      if (f.offsets_[k + 1] < f.offsets_[k]) fail("corrupt: sequence offsets decrease at {}", k);
      const int64_t vocab = f.info_->tokenizers[size_t(k % f.streams_)].vocab_size;
      const uint64_t begin = f.offsets_[k], count = f.offsets_[k + 1] - begin;
      const bool ok = f.id_bytes_ == 2 ? ids_below(static_cast<const uint16_t*>(f.ids_) + begin, count, vocab)
                                       : ids_below(static_cast<const int32_t*>(f.ids_) + begin, count, vocab);
      if (!ok) fail("corrupt: sequence {} has an id outside the vocabulary of {}", k, vocab);
    }
    return f;
  });
}

TokenFile TokenFile::open_or_build(const std::string& path, const TokenFileSpec& spec,
                                   CacheOutcome* outcome) {
  const std::vector<TokenizerIdentity> tokenizers = tokenizer_identities(spec);
  CacheOutcome result{true, "absent"};
  if (fs::exists(path)) {
    try {
      TokenFile existing = open(path);
      std::optional<std::string> stale = differences(existing.info(), spec, tokenizers);
      if (!stale) {
        if (outcome) *outcome = {false, ""};
        return existing;
      }
      result.reason = "stale: " + *stale;
    } catch (const Error& e) {
      result.reason = std::string("unreadable: ") + e.what();
    }
  }
  write_token_file(path, spec, tokenizers);
  if (outcome) *outcome = result;
  return open(path);
}

IdView TokenFile::sequence(int64_t k) const {
  TFM_CHECK(k >= 0 && k < sequences(), "sequence {} of {}", k, sequences());
  const uint64_t begin = offsets_[k], count = offsets_[k + 1] - begin;
  if (id_bytes_ == 2) return IdView(std::span(static_cast<const uint16_t*>(ids_) + begin, count));
  return IdView(std::span(static_cast<const int32_t*>(ids_) + begin, count));
}

namespace {

class TokenFilePairs final : public PairSource {
 public:
  explicit TokenFilePairs(TokenFile file) : file_(std::move(file)) {}
  int64_t size() const override { return file_.records(); }
  IdView src(int64_t i) const override { return file_.ids(i, 0); }
  IdView tgt(int64_t i) const override { return file_.ids(i, 1); }

 private:
  TokenFile file_;
};

}  // namespace

std::shared_ptr<const PairSource> TokenFile::pairs() const {
  if (streams_ != 2) fail("{}: a token file of {} stream(s) has no (source, target) pairs", path_, streams_);
  return std::make_shared<TokenFilePairs>(*this);
}

}  // namespace tfm::data
