#include "tokenize/whitespace.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <cstdint>

#include "core/error.h"

namespace tfm::tokenize {

namespace {

// Oniguruma's [[:word:]] code ranges: Alphabetic | Mark | Decimal_Number | Connector_Punctuation.
bool in_word_ranges(UChar32 c) {
  constexpr uint32_t kMask = U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK;
  return (U_GET_GC_MASK(c) & kMask) != 0 || u_hasBinaryProperty(c, UCHAR_ALPHABETIC);
}

// \w matched on its own (the pattern's \w+).
bool is_word(UChar32 c) {
  if (c > 0xFF) return in_word_ranges(c);
  constexpr uint32_t kMask = U_GC_L_MASK | U_GC_M_MASK | U_GC_N_MASK | U_GC_PC_MASK;
  return (U_GET_GC_MASK(c) & kMask) != 0;
}

// [^\w\s] (the pattern's second alternative).
bool is_other(UChar32 c) { return !in_word_ranges(c) && !u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }

class Utf8Cursor {
 public:
  explicit Utf8Cursor(std::string_view text)
      : bytes_(reinterpret_cast<const uint8_t*>(text.data())), size_(int64_t(text.size())) {}
  bool done() const { return pos_ >= size_; }
  int64_t pos() const { return pos_; }
  UChar32 peek() const {
    int64_t i = pos_;
    UChar32 c;
    U8_NEXT(bytes_, i, size_, c);
    if (c < 0) fail("invalid UTF-8 at byte offset {}", pos_);
    return c;
  }
  void advance() { U8_FWD_1(bytes_, pos_, size_); }

 private:
  const uint8_t* bytes_;
  int64_t size_;
  int64_t pos_ = 0;
};

}  // namespace

std::vector<std::string_view> split_whitespace(std::string_view text) {
  std::vector<std::string_view> pieces;
  Utf8Cursor cursor(text);
  while (!cursor.done()) {
    const UChar32 c = cursor.peek();
    bool (*in_run)(UChar32) = is_word(c) ? is_word : is_other(c) ? is_other : nullptr;
    const int64_t start = cursor.pos();
    cursor.advance();
    if (!in_run) continue;  // white space
    while (!cursor.done() && in_run(cursor.peek())) cursor.advance();
    pieces.push_back(text.substr(size_t(start), size_t(cursor.pos() - start)));
  }
  return pieces;
}

}  // namespace tfm::tokenize
