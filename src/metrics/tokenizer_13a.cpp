#include "metrics/tokenizer_13a.h"

#include "metrics/text.h"

namespace tfm::metrics {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// The class [\{-\~\[-\` -\&\(-\+\:-\@\/] of tokenizer_re.py: every printable ASCII character except
// letters, digits and ' , - .
bool is_separated_symbol(char c) {
  return (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') || c == '/' || (c >= ':' && c <= '@') ||
         (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

// Python's str.replace(from, to): every non-overlapping occurrence, left to right.
void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  size_t start = 0;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, start)) {
    out.append(text, start, at - start).append(to);
    start = at + from.size();
  }
  if (start == 0) return;
  out.append(text, start);
  text = std::move(out);
}

// re.sub over the two-character pattern (first)(second): a match emits `replacement(a, b)` and the scan
// resumes after `b`. Working on UTF-8 bytes gives the same result as on code points: the byte before an
// ASCII '.' or ',' is the last byte of the preceding character, and a multi-byte character after one is
// never a digit, so the bytes that follow its lead byte pass through unchanged.
template <typename First, typename Second, typename Emit>
std::string substitute_pairs(const std::string& text, First first, Second second, Emit emit) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
      emit(out, text[i], text[i + 1]);
      i += 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace

std::string tokenize_13a(std::string_view line) {
  std::string text(rstrip_whitespace(line));
  replace_all(text, "<skipped>", "");
  replace_all(text, "-\n", "");
  replace_all(text, "\n", " ");
  if (text.find('&') != std::string::npos) {
    replace_all(text, "&quot;", "\"");
    replace_all(text, "&amp;", "&");
    replace_all(text, "&lt;", "<");
    replace_all(text, "&gt;", ">");
  }

  std::string spaced;
  spaced.reserve(text.size() * 2 + 2);
  spaced += ' ';
  for (char c : text) {
    if (is_separated_symbol(c)) {
      spaced.append({' ', c, ' '});
    } else {
      spaced += c;
    }
  }
  spaced += ' ';

  const auto not_digit = [](char c) { return !is_digit(c); };
  // ([^0-9])([\.,]) -> "\1 \2 "
  spaced = substitute_pairs(spaced, not_digit, is_period_or_comma, [](std::string& out, char a, char b) {
    out.append({a, ' ', b, ' '});
  });
  // ([\.,])([^0-9]) -> " \1 \2"
  spaced = substitute_pairs(spaced, is_period_or_comma, not_digit, [](std::string& out, char a, char b) {
    out.append({' ', a, ' ', b});
  });
  // ([0-9])(-) -> "\1 \2 "
  spaced = substitute_pairs(
      spaced, is_digit, [](char c) { return c == '-'; },
      [](std::string& out, char a, char b) {
        out.append({a, ' ', b, ' '});
      });

  std::string tokens;
  tokens.reserve(spaced.size());
  for (std::string_view word : split_whitespace(spaced)) {
    if (!tokens.empty()) tokens += ' ';
    tokens += word;
  }
  return tokens;
}

}  // namespace tfm::metrics
