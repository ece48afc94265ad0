#include "data/line_reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace tfm::data {

namespace {

constexpr size_t kChunkBytes = size_t(1) << 18;

}  // namespace

LineReader::LineReader(std::string path) : path_(std::move(path)), buffer_(kChunkBytes) {
  errno = 0;
  file_ = gzopen(path_.c_str(), "rb");
  if (!file_) fail("cannot open {}: {}", path_, errno ? std::strerror(errno) : "out of memory");
  gzbuffer(file_, unsigned(kChunkBytes));
  if (path_.ends_with(".gz") && gzdirect(file_)) {
    gzclose(file_);
    fail("{}: not gzip data", path_);
  }
}

LineReader::~LineReader() { gzclose(file_); }

bool LineReader::fill() {
  int n = gzread(file_, buffer_.data(), unsigned(buffer_.size()));
  int code = Z_OK;
  std::string_view message = gzerror(file_, &code);
  if (n < 0 || code != Z_OK) {
    // zlib's message starts with the path; say it once.
    if (message.starts_with(path_ + ": ")) message.remove_prefix(path_.size() + 2);
    fail("{}: read error after line {}: {}", path_, line_number_, message);
  }
  begin_ = 0;
  end_ = size_t(n);
  return n > 0;
}

bool LineReader::next(std::string& line) {
  line.clear();
  bool got_data = false;
  for (;;) {
    const char* start = buffer_.data() + begin_;
    const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
    if (newline) {
      line.append(start, newline);
      begin_ += size_t(newline - start) + 1;
      break;
    }
    got_data |= end_ > begin_;
    line.append(start, end_ - begin_);
    begin_ = end_;
    if (!fill()) {
      if (!got_data) return false;
      break;
    }
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  ++line_number_;
  return true;
}

}  // namespace tfm::data
