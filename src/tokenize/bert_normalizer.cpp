#include "tokenize/bert_normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenize/bert_chars.h"

namespace tfm::tokenize {

namespace {

using CodePoints = std::u32string;

std::string encode_utf8(const CodePoints& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) {
    char buffer[U8_MAX_LENGTH];
    int32_t length = 0;
    U8_APPEND_UNSAFE(buffer, length, c);
    out.append(buffer, size_t(length));
  }
  return out;
}

CodePoints clean_text(const CodePoints& in) {
  CodePoints out;
  out.reserve(in.size());
  for (char32_t c : in) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    out.push_back(is_rust_whitespace(c) ? U' ' : c);
  }
  return out;
}

CodePoints space_chinese_chars(const CodePoints& in) {
  CodePoints out;
  out.reserve(in.size());
  for (char32_t c : in) {
    if (is_bert_chinese_char(c)) {
      out.insert(out.end(), {U' ', c, U' '});
    } else {
      out.push_back(c);
    }
  }
  return out;
}

CodePoints strip_accents(const CodePoints& in) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  icu::UnicodeString source(int32_t(in.size()), 0, 0);  // capacity only
  for (char32_t c : in) source.append(UChar32(c));
  const icu::UnicodeString decomposed = nfd->normalize(source, status);
  TFM_CHECK(U_SUCCESS(status), "ICU NFD failed: {}", u_errorName(status));
  CodePoints out;
  out.reserve(size_t(decomposed.length()));
  for (int32_t i = 0; i < decomposed.length(); i = decomposed.moveIndex32(i, 1)) {
    const UChar32 c = decomposed.char32At(i);
    if (!is_bert_nonspacing_mark(c)) out.push_back(char32_t(c));
  }
  return out;
}

CodePoints lowercase(const CodePoints& in) {
  CodePoints out;
  out.reserve(in.size());
  for (char32_t c : in) {
    // The one unconditional multi-character lowercase mapping in SpecialCasing.txt; everything else is
    // the simple mapping of UnicodeData.txt, which u_tolower gives.
    if (c == 0x130) {
      out.insert(out.end(), {U'i', U'\u0307'});
    } else {
      out.push_back(char32_t(u_tolower(c)));
    }
  }
  return out;
}

}  // namespace

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options) {
  CodePoints code_points = decode_utf8(text);
  if (options.clean_text) code_points = clean_text(code_points);
  if (options.handle_chinese_chars) code_points = space_chinese_chars(code_points);
  if (options.strip_accents.value_or(options.lowercase)) code_points = strip_accents(code_points);
  if (options.lowercase) code_points = lowercase(code_points);
  return encode_utf8(code_points);
}

}  // namespace tfm::tokenize
