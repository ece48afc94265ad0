#include "tokenize/byte_level.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <array>
#include <cstdint>

#include "core/error.h"

namespace tfm::tokenize {

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes keep their value, the rest map to 256, 257, ...
struct Alphabet {
  std::array<char32_t, 256> code_point{};
  std::array<std::string, 256> utf8;
  std::array<int16_t, 324> byte_of{};  // code points 0..323 cover the whole alphabet

  Alphabet() {
    byte_of.fill(-1);
    char32_t next_extra = 256;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
      const char32_t c = printable ? char32_t(byte) : next_extra++;
      code_point[size_t(byte)] = c;
      byte_of[c] = int16_t(byte);
      char buffer[4];
      int32_t length = 0;
      U8_APPEND_UNSAFE(buffer, length, c);
      utf8[size_t(byte)] = std::string(buffer, size_t(length));
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

CharClass classify_with_icu(UChar32 c) {
  const uint32_t category = U_GET_GC_MASK(c);
  if (category & U_GC_L_MASK) return CharClass::kLetter;
  if (category & U_GC_N_MASK) return CharClass::kNumber;
  if (u_isUWhiteSpace(c)) return CharClass::kSpace;
  return CharClass::kOther;
}

// The classes of the ASCII characters, looked up once from ICU.
const std::array<CharClass, 128>& ascii_classes() {
  static const std::array<CharClass, 128> table = [] {
    std::array<CharClass, 128> classes{};
    for (UChar32 c = 0; c < 128; ++c) classes[size_t(c)] = classify_with_icu(c);
    return classes;
  }();
  return table;
}

// Walks the text one code point at a time, classifying each.
class Scanner {
 public:
  explicit Scanner(std::string_view text)
      : bytes_(reinterpret_cast<const uint8_t*>(text.data())),
        size_(int32_t(text.size())),
        ascii_(ascii_classes()) {
    if (text.size() > size_t(INT32_MAX))
      fail("cannot pre-tokenize {} bytes at once (2 GiB at most)", text.size());
  }

  int32_t size() const { return size_; }
  uint8_t byte(int32_t pos) const { return bytes_[pos]; }

  // The class of the character at `pos` (< size()); `*next` gets the position after it.
  CharClass class_at(int32_t pos, int32_t* next) const {
    if (bytes_[pos] < 0x80) {
      *next = pos + 1;
      return ascii_[bytes_[pos]];
    }
    int32_t i = pos;
    UChar32 c;
    U8_NEXT(bytes_, i, size_, c);
    if (c < 0) fail("invalid UTF-8 at byte offset {}", pos);
    *next = i;
    return classify_with_icu(c);
  }

  // The end of the run of characters of class `cls` that starts at `pos`; `*last` gets the start of
  // the run's last character.
  int32_t run_end(int32_t pos, CharClass cls, int32_t* last) const {
    int32_t next = pos;
    while (pos < size_ && class_at(pos, &next) == cls) {
      *last = pos;
      pos = next;
    }
    return pos;
  }

  // The length of the contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0.
  int32_t contraction_length(int32_t pos) const {
    if (bytes_[pos] != '\'' || pos + 1 >= size_) return 0;
    const uint8_t c1 = bytes_[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= size_) return 0;
    const uint8_t c2 = bytes_[pos + 2];
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
  }

 private:
  const uint8_t* bytes_;
  int32_t size_;
  const std::array<CharClass, 128>& ascii_;
};

// The end of the GPT-2 pre-token that starts at `pos`.
int32_t pretoken_end(const Scanner& scan, int32_t pos) {
  if (int32_t length = scan.contraction_length(pos)) return pos + length;
  int32_t next = 0, last = pos;
  const CharClass first = scan.class_at(pos, &next);
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a literal space may lead a run of one class.
  if (scan.byte(pos) == ' ' && next < scan.size()) {
    int32_t after = 0;
    const CharClass second = scan.class_at(next, &after);
    if (second != CharClass::kSpace) return scan.run_end(next, second, &last);
  }
  if (first != CharClass::kSpace) return scan.run_end(pos, first, &last);
  // "\s+(?!\S)" leaves a run's last character to the next pre-token when a non-space follows; a run of
  // one character before a non-space is then matched by "\s+" whole.
  const int32_t end = scan.run_end(pos, CharClass::kSpace, &last);
  if (end == scan.size() || last == pos) return end;
  return last;
}

}  // namespace

std::string_view byte_char(uint8_t byte) { return alphabet().utf8[byte]; }

int byte_of_char(char32_t c) { return c < alphabet().byte_of.size() ? alphabet().byte_of[c] : -1; }

std::string bytes_to_chars(std::string_view bytes) {
  std::string chars;
  chars.reserve(bytes.size() * 2);
  for (char byte : bytes) chars += byte_char(uint8_t(byte));
  return chars;
}

std::optional<std::string> chars_to_bytes(std::string_view token) {
  std::string bytes;
  const auto* data = reinterpret_cast<const uint8_t*>(token.data());
  const int32_t size = int32_t(token.size());
  for (int32_t i = 0; i < size;) {
    UChar32 c;
    U8_NEXT(data, i, size, c);
    const int byte = c < 0 ? -1 : byte_of_char(char32_t(c));
    if (byte < 0) return std::nullopt;
    bytes += char(byte);
  }
  return bytes;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size());
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const int64_t size = int64_t(bytes.size());
  for (int64_t i = 0; i < size;) {
    const int64_t start = i;
    UChar32 c;
    // On an ill-formed sequence ICU skips its maximal subpart, the unit Rust replaces by one U+FFFD.
    U8_NEXT(data, i, size, c);
    if (c < 0)
      text += "\xEF\xBF\xBD";
    else
      text.append(bytes.substr(size_t(start), size_t(i - start)));
  }
  return text;
}

void split_gpt2_pretokens(std::string_view text, std::vector<std::string_view>& pieces) {
  const Scanner scan(text);
  for (int32_t pos = 0; pos < scan.size();) {
    const int32_t end = pretoken_end(scan, pos);
    pieces.push_back(text.substr(size_t(pos), size_t(end - pos)));
    pos = end;
  }
}

std::vector<std::string_view> split_gpt2_pretokens(std::string_view text) {
  std::vector<std::string_view> pieces;
  split_gpt2_pretokens(text, pieces);
  return pieces;
}

}  // namespace tfm::tokenize
