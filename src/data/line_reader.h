// Streaming line reader for plain text and gzip files.
//
// Everything is read through zlib, which decompresses gzip content and passes any other content through
// unchanged; a path ending in ".gz" must hold gzip data. Lines are split at '\n' and lose one trailing '\r'
// (CRLF files read like LF files); a last line without '\n' is still a line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct gzFile_s;  // zlib's gzFile

namespace tfm::data {

class LineReader {
 public:
  explicit LineReader(std::string path);  // throws tfm::Error naming the path if it cannot be opened
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Reads the next line into `line` (without '\n' / "\r\n"). Returns false at the end of the file.
  // Throws tfm::Error naming the path on a read error or a corrupt or truncated gzip stream.
  bool next(std::string& line);
  // 1-based number of the line last returned by next() (0 before the first).
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

 private:
  bool fill();  // reads more data into buffer_; false at the end of the file

  std::string path_;
  gzFile_s* file_ = nullptr;
  std::vector<char> buffer_;
  size_t begin_ = 0;  // unread data is buffer_[begin_, end_)
  size_t end_ = 0;
  int64_t line_number_ = 0;
};

}  // namespace tfm::data
