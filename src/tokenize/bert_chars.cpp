#include "tokenize/bert_chars.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace tfm::tokenize {

namespace {

// True when Unicode 8.0 had already assigned `c` (the version of the crate's tables).
bool assigned_by_unicode_8(UChar32 c) {
  UVersionInfo age;
  u_charAge(c, age);
  const UVersionInfo unicode_8 = {8, 0, 0, 0};
  return age[0] != 0 && std::memcmp(age, unicode_8, sizeof(UVersionInfo)) <= 0;
}

// The general-category mask of `c` as Unicode 8.0 had it, for the categories these rules ask about. The cases
// are every character assigned by 8.0 whose Cc/Cf/Mn/P* membership differs in ICU's Unicode (found by
// comparing all code points with the crate's tables).
uint32_t unicode_8_category_mask(UChar32 c) {
  switch (c) {
    case 0x166D:   // CANADIAN SYLLABICS CHI SIGN: Po in 8.0, So now
    case 0x111C9:  // SHARADA SANDHI MARK: Po in 8.0, Mn now
      return U_GC_PO_MASK;
    case 0x1734:  // HANUNOO SIGN PAMUDPOD: Mn in 8.0, Mc now
      return U_GC_MN_MASK;
    case 0x1885:  // MONGOLIAN LETTER ALI GALI BALUDA: Lo in 8.0, Mn now
    case 0x1886:  // MONGOLIAN LETTER ALI GALI THREE BALUDA
      return U_GC_LO_MASK;
    case 0xA9BD:  // JAVANESE CONSONANT SIGN KERET: Mc in 8.0, Mn now
      return U_GC_MC_MASK;
    default:
      return assigned_by_unicode_8(c) ? uint32_t(U_GET_GC_MASK(c)) : 0;
  }
}

bool is_private_use_endpoint(UChar32 c) {
  constexpr std::array<UChar32, 6> kEndpoints = {0xE000, 0xF8FF, 0xF0000, 0xFFFFD, 0x100000, 0x10FFFD};
  return std::find(kEndpoints.begin(), kEndpoints.end(), c) != kEndpoints.end();
}

}  // namespace

bool is_rust_whitespace(UChar32 c) { return u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }

bool is_bert_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return (unicode_8_category_mask(c) & (U_GC_CC_MASK | U_GC_CF_MASK)) != 0 || is_private_use_endpoint(c);
}

bool is_bert_nonspacing_mark(UChar32 c) { return (unicode_8_category_mask(c) & U_GC_MN_MASK) != 0; }

bool is_bert_punctuation(UChar32 c) {
  const bool ascii_punctuation = (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
                                 (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  return ascii_punctuation || (unicode_8_category_mask(c) & U_GC_P_MASK) != 0;
}

bool is_bert_chinese_char(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace tfm::tokenize
