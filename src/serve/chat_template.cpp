// Chat templates: a lexer (text and tags, with Hugging Face's whitespace handling), a recursive-descent
// parser into a small AST, and a tree-walking evaluator over Python-like values. See chat_template.h for
// the subset of Jinja2 and the limits.
#include "serve/chat_template.h"

#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>

#include "core/error.h"
#include "io/atomic_file.h"
#include "metrics/text.h"

namespace tfm::serve {

namespace {

constexpr int kMaxSyntaxDepth = 64;
constexpr int kMaxExprDepth = 256;
constexpr int kMaxValueDepth = 64;
constexpr size_t kMaxListSize = size_t(1) << 20;
constexpr size_t kMaxStringSize = size_t(32) << 20;
constexpr int64_t kMaxSteps = int64_t(1) << 23;
constexpr int64_t kMaxRange = 100000;

struct Pos {
  int line = 1, column = 1;
};

Error positioned(Pos pos, const std::string& message) {
  return Error(fmt::format("chat template: line {}, column {}: {}", pos.line, pos.column, message));
}

template <typename... Args>
[[noreturn]] void syntax_error(Pos pos, fmt::format_string<Args...> f, Args&&... args) {
  throw positioned(pos, fmt::format(f, std::forward<Args>(args)...));
}

// A render error not yet placed: the innermost expression or statement being evaluated catches it and
// throws the tfm::Error with its own line and column.
struct Fault {
  std::string message;
};

template <typename... Args>
[[noreturn]] void fault(fmt::format_string<Args...> f, Args&&... args) {
  throw Fault{fmt::format(f, std::forward<Args>(args)...)};
}

// ---- UTF-8 -------------------------------------------------------------------------------------------

// Where the code point at s[i] ends (an ill-formed sequence counts as one character).
size_t next_char(std::string_view s, size_t i) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
  int64_t next = int64_t(i);
  UChar32 c;
  U8_NEXT(bytes, next, int64_t(s.size()), c);
  return size_t(next);
}

// The offsets where the code points of s start, then s.size().
std::vector<size_t> char_offsets(std::string_view s) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < s.size(); i = next_char(s, i)) offsets.push_back(i);
  offsets.push_back(s.size());
  return offsets;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

// Substring search in linear time (Knuth-Morris-Pratt), so that no text and needle make it quadratic.
class Finder {
 public:
  explicit Finder(std::string_view needle) : needle_(needle), border_(needle.size() + 1, 0) {
    for (size_t i = 1, k = 0; i < needle.size(); ++i) {
      while (k > 0 && needle[i] != needle[k]) k = border_[k];
      if (needle[i] == needle[k]) ++k;
      border_[i + 1] = uint32_t(k);
    }
  }

  // The first occurrence in `text` at or after `from`, or npos.
  size_t find(std::string_view text, size_t from) const {
    if (needle_.empty()) return from <= text.size() ? from : std::string_view::npos;
    for (size_t i = from, k = 0; i < text.size(); ++i) {
      while (k > 0 && text[i] != needle_[k]) k = border_[k];
      if (text[i] == needle_[k]) ++k;
      if (k == needle_.size()) return i + 1 - k;
    }
    return std::string_view::npos;
  }

 private:
  std::string_view needle_;
  std::vector<uint32_t> border_;  // border_[i]: the longest proper border of needle[0, i) (strings < 4 GiB)
};

// Python's str.strip / lstrip / rstrip: the code points of `chars`, or without it whitespace.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right) {
  std::unordered_set<std::string_view> set;
  if (chars)
    for (size_t i = 0; i < chars->size(); i = next_char(*chars, i))
      set.insert(std::string_view(*chars).substr(i, next_char(*chars, i) - i));
  size_t first = std::string_view::npos, end = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t next = next_char(s, i);
    const bool stripped =
        chars ? set.count(s.substr(i, next - i)) != 0 : metrics::whitespace_length_at(s, i) != 0;
    if (!stripped) {
      if (first == std::string_view::npos) first = i;
      end = next;
    }
    i = next;
  }
  if (first == std::string_view::npos) return "";
  const size_t begin = left ? first : 0, stop = right ? end : s.size();
  return std::string(s.substr(begin, stop - begin));
}

// Python's str.upper / str.lower (full case mapping: "ß".upper() is "SS").
std::string change_case(std::string_view s, bool upper) {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())));
  if (upper)
    u.toUpper(icu::Locale::getRoot());
  else
    u.toLower(icu::Locale::getRoot());
  std::string out;
  u.toUTF8String(out);
  return out;
}

// ---- Values ------------------------------------------------------------------------------------------

struct ListData;
struct DictData;
struct NamespaceData;

// Jinja's default Undefined: prints as "", is false, iterates as empty; most other uses are an error
// that says `hint` ("'x' is undefined").
struct Undefined {
  std::string hint;
};
struct None {};
using Str = std::shared_ptr<const std::string>;
using List = std::shared_ptr<const ListData>;
using Dict = std::shared_ptr<const DictData>;
using Namespace = std::shared_ptr<NamespaceData>;  // the one mutable kind: {% set ns.attr = ... %}

struct Value {
  std::variant<Undefined, None, bool, int64_t, Str, List, Dict, Namespace> v;
  template <typename T>
  const T* as() const {
    return std::get_if<T>(&v);
  }
  bool undefined() const { return v.index() == 0; }
};

using Entries = std::vector<std::pair<std::string, Value>>;  // in insertion order, as Python dicts

struct ListData {
  std::vector<Value> items;
  bool tuple = false;  // from dict.items(): only printing and equality tell it apart
  int depth = 1;
};
struct DictData {
  Entries entries;
  int depth = 1;
};
struct NamespaceData {
  Entries attrs;
};

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

// The rendering work done so far, against kMaxSteps.
class Budget {
 public:
  void step(int64_t n = 1) {
    steps_ += n;
    if (steps_ > kMaxSteps) fault("rendering takes more than {} steps", kMaxSteps);
  }
  void bytes(size_t n) { step(int64_t(n / 64)); }

 private:
  int64_t steps_ = 0;
};

[[noreturn]] void too_long() { fault("a string longer than {} bytes", kMaxStringSize); }

Value string_value(std::string s, Budget& budget) {
  if (s.size() > kMaxStringSize) too_long();
  budget.bytes(s.size());
  return Value{std::make_shared<const std::string>(std::move(s))};
}

int depth_of(const Value& v) {
  if (const List* l = v.as<List>()) return (*l)->depth;
  if (const Dict* d = v.as<Dict>()) return (*d)->depth;
  return 0;
}

// Namespaces are kept out of lists (and out of namespaces) so that no value can contain itself.
void check_storable(const Value& v) {
  if (v.as<Namespace>()) fault("a namespace cannot be stored in a list or a namespace");
  if (depth_of(v) >= kMaxValueDepth) fault("values nested more than {} deep", kMaxValueDepth);
}

void check_list_size(size_t n) {
  if (n > kMaxListSize) fault("a list longer than {} items", kMaxListSize);
}

Value list_value(std::vector<Value> items, Budget& budget, bool tuple = false) {
  check_list_size(items.size());
  budget.step(int64_t(items.size()));
  int depth = 0;
  for (const Value& item : items) {
    check_storable(item);
    depth = std::max(depth, depth_of(item));
  }
  return Value{std::make_shared<const ListData>(ListData{std::move(items), tuple, depth + 1})};
}

const std::string* string_of(const Value& v) {
  const Str* s = v.as<Str>();
  return s ? s->get() : nullptr;
}

// An int, or a bool as Python's int subclass.
std::optional<int64_t> integer(const Value& v) {
  if (const int64_t* i = v.as<int64_t>()) return *i;
  if (const bool* b = v.as<bool>()) return int64_t(*b);
  return std::nullopt;
}

std::string type_name(const Value& v) {
  if (const List* l = v.as<List>()) return (*l)->tuple ? "tuple" : "list";
  static const char* const kNames[] = {"Undefined", "NoneType", "bool", "int",
                                       "str",       "list",     "dict", "Namespace"};
  return kNames[v.v.index()];
}

// How Jinja names the object in an undefined-attribute message.
std::string object_name(const Value& v) { return v.as<None>() ? "None" : type_name(v) + " object"; }

[[noreturn]] void undefined_fault(const Value& v) {
  const Undefined* u = v.as<Undefined>();
  fault("{}", u && !u->hint.empty() ? u->hint : "the value is undefined");
}

const Value& defined(const Value& v) {
  if (v.undefined()) undefined_fault(v);
  return v;
}

bool truthy(const Value& v) {
  return std::visit(
      Overloaded{[](const Undefined&) { return false; }, [](const None&) { return false; },
                 [](bool b) { return b; }, [](int64_t i) { return i != 0; },
                 [](const Str& s) { return !s->empty(); }, [](const List& l) { return !l->items.empty(); },
                 [](const Dict& d) { return !d->entries.empty(); }, [](const Namespace&) { return true; }},
      v.v);
}

const Value* find_entry(const Entries& entries, std::string_view key) {
  for (const auto& [k, value] : entries)
    if (k == key) return &value;
  return nullptr;
}

void set_entry(Entries& entries, const std::string& key, Value value) {
  for (auto& [k, v] : entries)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries.emplace_back(key, std::move(value));
}

// ---- Printing: Python's str() and repr(), and json.dumps ----------------------------------------------

void check_length(const std::string& out) {
  if (out.size() > kMaxStringSize) too_long();
}

bool printable(UChar32 c) {
  if (c < 0x80) return c >= 0x20 && c != 0x7F;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

// Python's repr() of a str: single quotes unless the text has a ' and no ", and escapes for what is
// not printable.
void repr_string(std::string_view s, std::string& out) {
  const char quote =
      s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"' : '\'';
  out += quote;
  const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
  for (int64_t i = 0; i < int64_t(s.size());) {
    const int64_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, int64_t(s.size()), c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n' || c == '\r' || c == '\t') {
      out += c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t";
    } else if (c < 0) {
      for (int64_t k = start; k < i; ++k) out += fmt::format("\\x{:02x}", bytes[k]);
    } else if (!printable(c)) {
      out += c < 0x100     ? fmt::format("\\x{:02x}", c)
             : c < 0x10000 ? fmt::format("\\u{:04x}", c)
                           : fmt::format("\\U{:08x}", c);
    } else {
      out.append(s.substr(size_t(start), size_t(i - start)));
    }
    check_length(out);
  }
  out += quote;
}

void repr(const Value& value, std::string& out, Budget& budget);

void repr_entries(const Entries& entries, std::string& out, Budget& budget) {
  out += '{';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) out += ", ";
    repr_string(entries[i].first, out);
    out += ": ";
    repr(entries[i].second, out, budget);
  }
  out += '}';
}

void repr(const Value& value, std::string& out, Budget& budget) {
  budget.step();
  check_length(out);
  std::visit(
      Overloaded{[&](const Undefined&) { out += "Undefined"; }, [&](const None&) { out += "None"; },
                 [&](bool b) { out += b ? "True" : "False"; },
                 [&](int64_t i) { out += fmt::format("{}", i); }, [&](const Str& s) { repr_string(*s, out); },
                 [&](const List& l) {
                   out += l->tuple ? '(' : '[';
                   for (size_t i = 0; i < l->items.size(); ++i) {
                     if (i) out += ", ";
                     repr(l->items[i], out, budget);
                   }
                   if (l->tuple && l->items.size() == 1) out += ',';
                   out += l->tuple ? ')' : ']';
                 },
                 [&](const Dict& d) { repr_entries(d->entries, out, budget); },
                 [&](const Namespace& n) {
                   out += "<Namespace ";
                   repr_entries(n->attrs, out, budget);
                   out += '>';
                 }},
      value.v);
  check_length(out);
}

// Python's str(), and what {{ }} prints: strings as they are, Undefined as "", the rest as repr().
std::string to_str(const Value& v, Budget& budget) {
  if (const std::string* s = string_of(v)) return *s;
  std::string out;
  if (!v.undefined()) repr(v, out, budget);
  budget.bytes(out.size());
  return out;
}

void json_string(std::string_view s, std::string& out) {
  out += '"';
  for (const char ch : s) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (uint8_t(ch) < 0x20)
          out += fmt::format("\\u{:04x}", int(ch));
        else
          out += ch;
    }
  }
  out += '"';
  check_length(out);
}

// json.dumps(value, ensure_ascii=False, indent=indent) as Hugging Face's tojson filter calls it: with an
// indent, items go on lines of their own and the separators are "," and ": ", else ", " and ": ".
class JsonWriter {
 public:
  JsonWriter(std::optional<int64_t> indent, std::string& out, Budget& budget)
      : indent_(indent), out_(out), budget_(budget) {}

  void write(const Value& value, int level) {
    budget_.step();
    std::visit(Overloaded{[&](const Undefined&) { unserializable(value); },
                          [&](const None&) { out_ += "null"; }, [&](bool b) { out_ += b ? "true" : "false"; },
                          [&](int64_t i) { out_ += fmt::format("{}", i); },
                          [&](const Str& s) { json_string(*s, out_); },
                          [&](const List& l) {
                            container('[', ']', l->items.size(), level,
                                      [&](size_t i) { write(l->items[i], level + 1); });
                          },
                          [&](const Dict& d) {
                            container('{', '}', d->entries.size(), level, [&](size_t i) {
                              json_string(d->entries[i].first, out_);
                              out_ += ": ";
                              write(d->entries[i].second, level + 1);
                            });
                          },
                          [&](const Namespace&) { unserializable(value); }},
               value.v);
  }

 private:
  std::optional<int64_t> indent_;
  std::string& out_;
  Budget& budget_;

  [[noreturn]] static void unserializable(const Value& v) {
    fault("Object of type {} is not JSON serializable", type_name(v));
  }

  template <typename Fn>
  void container(char open, char close, size_t n, int level, Fn&& item) {
    out_ += open;
    for (size_t i = 0; i < n; ++i) {
      if (i) out_ += indent_ ? "," : ", ";
      newline(level + 1);
      item(i);
    }
    if (n) newline(level);
    out_ += close;
  }

  void newline(int level) {
    if (!indent_) return;
    const size_t spaces = size_t(std::max<int64_t>(*indent_, 0)) * size_t(level);
    if (out_.size() + spaces + 1 > kMaxStringSize) too_long();
    out_ += '\n';
    out_.append(spaces, ' ');
  }
};

// ---- Operations --------------------------------------------------------------------------------------

bool equal(const Value& a, const Value& b, Budget& budget) {
  budget.step();
  if (const auto x = integer(a)) {
    const auto y = integer(b);
    return y && *x == *y;
  }
  if (a.v.index() != b.v.index()) return false;
  if (const std::string* s = string_of(a)) {
    const std::string& t = *string_of(b);
    if (s->size() == t.size()) budget.bytes(s->size());  // only then are the bytes compared
    return *s == t;
  }
  if (const List* l = a.as<List>()) {
    const ListData &x = **l, &y = **b.as<List>();
    if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
    for (size_t i = 0; i < x.items.size(); ++i)
      if (!equal(x.items[i], y.items[i], budget)) return false;
    return true;
  }
  if (const Dict* d = a.as<Dict>()) {
    const Entries &x = (*d)->entries, &y = (*b.as<Dict>())->entries;
    if (x.size() != y.size()) return false;
    for (const auto& [key, value] : x) {
      const Value* other = find_entry(y, key);
      if (!other || !equal(value, *other, budget)) return false;
    }
    return true;
  }
  if (const Namespace* n = a.as<Namespace>()) return *n == *b.as<Namespace>();
  return true;  // Undefined == Undefined, None == None
}

// Python's ordering of a and b: -1, 0 or 1; other pairs of types are a TypeError.
int order(const Value& a, const Value& b, std::string_view op, Budget& budget) {
  defined(a);
  defined(b);
  budget.step();
  if (const auto x = integer(a))
    if (const auto y = integer(b)) return (*x > *y) - (*x < *y);
  if (const std::string* x = string_of(a))
    if (const std::string* y = string_of(b)) {
      budget.bytes(std::min(x->size(), y->size()));
      const int c = x->compare(*y);
      return (c > 0) - (c < 0);
    }
  const List *x = a.as<List>(), *y = b.as<List>();
  if (x && y && (*x)->tuple == (*y)->tuple) {
    const auto &p = (*x)->items, &q = (*y)->items;
    for (size_t i = 0; i < std::min(p.size(), q.size()); ++i)
      if (!equal(p[i], q[i], budget)) return order(p[i], q[i], op, budget);
    return (p.size() > q.size()) - (p.size() < q.size());
  }
  fault("'{}' not supported between instances of '{}' and '{}'", op, type_name(a), type_name(b));
}

// Python's `item in container`.
bool contains(const Value& container, const Value& item, Budget& budget) {
  if (container.undefined()) return false;
  if (const std::string* s = string_of(container)) {
    const std::string* needle = string_of(item);
    if (!needle) fault("'in <string>' requires string as left operand, not {}", type_name(item));
    budget.bytes(s->size() + needle->size());
    return Finder(*needle).find(*s, 0) != std::string::npos;
  }
  if (const List* l = container.as<List>()) {
    for (const Value& v : (*l)->items)
      if (equal(v, item, budget)) return true;
    return false;
  }
  if (const Dict* d = container.as<Dict>()) {
    const std::string* key = string_of(item);
    return key && find_entry((*d)->entries, *key);
  }
  fault("argument of type '{}' is not iterable", type_name(container));
}

[[noreturn]] void unsupported_operands(std::string_view op, const Value& a, const Value& b) {
  defined(a);
  defined(b);
  fault("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b));
}

[[noreturn]] void overflow() { fault("integer overflow"); }

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

Value concatenate(const Value& a, const Value& b, Budget& budget) {
  const List *x = a.as<List>(), *y = b.as<List>();
  if (!x || !y || (*x)->tuple != (*y)->tuple) unsupported_operands("+", a, b);
  check_list_size((*x)->items.size() + (*y)->items.size());
  std::vector<Value> items = (*x)->items;
  items.insert(items.end(), (*y)->items.begin(), (*y)->items.end());
  return list_value(std::move(items), budget, (*x)->tuple);
}

Value add(const Value& a, const Value& b, Budget& budget) {
  const auto x = integer(a), y = integer(b);
  if (x && y) return Value{checked_add(*x, *y)};
  const std::string *s = string_of(a), *t = string_of(b);
  if (s && t) {
    if (s->size() + t->size() > kMaxStringSize) too_long();
    return string_value(*s + *t, budget);
  }
  return concatenate(a, b, budget);
}

// Python's sequence * count: str or list repeated (nothing for a count below 1).
Value repeat(const Value& sequence, int64_t count, Budget& budget) {
  const int64_t n = std::max<int64_t>(count, 0);
  if (const std::string* s = string_of(sequence)) {
    if (!s->empty() && uint64_t(n) > kMaxStringSize / s->size()) too_long();
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += *s;
    return string_value(std::move(out), budget);
  }
  const auto& items = (*sequence.as<List>())->items;
  if (!items.empty() && uint64_t(n) > kMaxListSize / items.size()) check_list_size(SIZE_MAX);
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return list_value(std::move(out), budget, (*sequence.as<List>())->tuple);
}

bool is_sequence(const Value& v) { return v.as<Str>() || v.as<List>(); }

Value multiply(const Value& a, const Value& b, Budget& budget) {
  const auto x = integer(a), y = integer(b);
  if (x && y) return Value{checked_mul(*x, *y)};
  if (y && is_sequence(a)) return repeat(a, *y, budget);
  if (x && is_sequence(b)) return repeat(b, *x, budget);
  unsupported_operands("*", a, b);
}

// Python's // and %: the quotient rounds toward negative infinity and the remainder takes the sign of
// the divisor.
Value divide(const Value& a, const Value& b, bool remainder) {
  const auto x = integer(a), y = integer(b);
  if (remainder && string_of(a)) fault("'%' formatting of strings is not supported");
  if (!x || !y) unsupported_operands(remainder ? "%" : "//", a, b);
  if (*y == 0) fault("integer division or modulo by zero");
  if (*y == -1) return Value{remainder ? int64_t(0) : checked_sub(0, *x)};
  int64_t q = *x / *y, r = *x % *y;
  if (r != 0 && ((r < 0) != (*y < 0))) --q, r += *y;
  return Value{remainder ? r : q};
}

Value arithmetic(const std::string& op, const Value& a, const Value& b, Budget& budget) {
  if (op == "~") return string_value(to_str(a, budget) + to_str(b, budget), budget);
  if (op == "+") return add(a, b, budget);
  if (op == "*") return multiply(a, b, budget);
  if (op == "-") {
    const auto x = integer(a), y = integer(b);
    if (!x || !y) unsupported_operands("-", a, b);
    return Value{checked_sub(*x, *y)};
  }
  return divide(a, b, op == "%");
}

Value negate(const Value& v) {
  const auto x = integer(defined(v));
  if (!x) fault("bad operand type for unary -: '{}'", type_name(v));
  return Value{checked_sub(0, *x)};
}

Value attribute(const Value& obj, const std::string& name) {
  defined(obj);
  if (const Dict* d = obj.as<Dict>())
    if (const Value* v = find_entry((*d)->entries, name)) return *v;
  if (const Namespace* n = obj.as<Namespace>())
    if (const Value* v = find_entry((*n)->attrs, name)) return *v;
  return Value{Undefined{fmt::format("'{}' has no attribute '{}'", object_name(obj), name)}};
}

// Python's index into a sequence of `length`, negative from the end; nullopt when out of range.
std::optional<size_t> index_into(int64_t index, size_t length) {
  const int64_t i = index < 0 ? index + int64_t(length) : index;
  if (i < 0 || i >= int64_t(length)) return std::nullopt;
  return size_t(i);
}

// obj[key]: a string key reads an attribute (as Jinja's getattr fallback does), an integer indexes a list
// or a string's code points; anything missing is undefined.
Value subscript(const Value& obj, const Value& key, Budget& budget) {
  defined(obj);
  if (const std::string* name = string_of(key)) return attribute(obj, *name);
  if (const auto index = integer(key)) {
    if (const List* l = obj.as<List>())
      if (const auto i = index_into(*index, (*l)->items.size())) return (*l)->items[*i];
    if (const std::string* s = string_of(obj)) {
      budget.bytes(s->size());
      const std::vector<size_t> offsets = char_offsets(*s);
      if (const auto i = index_into(*index, offsets.size() - 1))
        return string_value(s->substr(offsets[*i], offsets[*i + 1] - offsets[*i]), budget);
    }
    return Value{Undefined{fmt::format("{} has no element {}", object_name(obj), *index)}};
  }
  return Value{Undefined{fmt::format("{} has no element of type {}", object_name(obj), type_name(key))}};
}

struct SliceRange {
  int64_t start, step, count;
};

// Python's slice(start, stop, step).indices(length) and the number of items it selects.
SliceRange slice_range(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                       std::optional<int64_t> step) {
  int64_t st = step.value_or(1);
  if (st == 0) fault("slice step cannot be zero");
  st = std::clamp(st, -(length + 1), length + 1);  // selects the same items, and cannot overflow below
  auto adjust = [&](std::optional<int64_t> i, int64_t fallback) {
    if (!i) return fallback;
    int64_t v = *i;
    if (v < 0) {
      v += length;
      if (v < 0) v = st < 0 ? -1 : 0;
    } else if (v >= length) {
      v = st < 0 ? length - 1 : length;
    }
    return v;
  };
  const int64_t b = adjust(start, st < 0 ? length - 1 : 0), e = adjust(stop, st < 0 ? -1 : length);
  const int64_t count = st < 0 ? (e < b ? (b - e - 1) / -st + 1 : 0) : (b < e ? (e - b - 1) / st + 1 : 0);
  return {b, st, count};
}

Value slice(const Value& obj, std::optional<int64_t> start, std::optional<int64_t> stop,
            std::optional<int64_t> step, Budget& budget) {
  defined(obj);
  if (const List* l = obj.as<List>()) {
    const auto& items = (*l)->items;
    const SliceRange r = slice_range(int64_t(items.size()), start, stop, step);
    std::vector<Value> out;
    for (int64_t k = 0; k < r.count; ++k) out.push_back(items[size_t(r.start + k * r.step)]);
    return list_value(std::move(out), budget, (*l)->tuple);
  }
  if (const std::string* s = string_of(obj)) {
    budget.bytes(s->size());
    const std::vector<size_t> offsets = char_offsets(*s);
    const SliceRange r = slice_range(int64_t(offsets.size() - 1), start, stop, step);
    std::string out;
    for (int64_t k = 0; k < r.count; ++k) {
      const size_t i = size_t(r.start + k * r.step);
      out.append(*s, offsets[i], offsets[i + 1] - offsets[i]);
    }
    return string_value(std::move(out), budget);
  }
  return Value{Undefined{fmt::format("{} cannot be sliced", object_name(obj))}};
}

// The items a for loop (or list(), join, ...) sees: a list's items, a string's code points, a dict's keys.
std::vector<Value> iterate(const Value& v, Budget& budget) {
  std::vector<Value> items;
  if (v.undefined()) return items;
  if (const List* l = v.as<List>()) {
    budget.step(int64_t((*l)->items.size()));
    return (*l)->items;
  }
  if (const std::string* s = string_of(v)) {
    for (size_t i = 0; i < s->size(); i = next_char(*s, i)) {
      check_list_size(items.size() + 1);
      items.push_back(string_value(s->substr(i, next_char(*s, i) - i), budget));
      budget.step();
    }
    return items;
  }
  if (const Dict* d = v.as<Dict>()) {
    for (const auto& entry : (*d)->entries) items.push_back(string_value(entry.first, budget));
    return items;
  }
  fault("'{}' object is not iterable", type_name(v));
}

Value items_of(const DictData& d, Budget& budget) {
  std::vector<Value> pairs;
  for (const auto& [key, value] : d.entries)
    pairs.push_back(list_value({string_value(key, budget), value}, budget, /*tuple=*/true));
  return list_value(std::move(pairs), budget);
}

// Calls fn(offset) for the first `count` (all when negative) places where `old` occurs in s without
// overlapping, as Python's str.replace finds them; an empty `old` occurs before every code point and at
// the end.
template <typename Fn>
void for_each_match(std::string_view s, std::string_view old, int64_t count, Fn&& fn) {
  const Finder finder(old);
  for (size_t i = 0; count != 0; count -= count > 0) {
    size_t k;
    if (old.empty()) {
      if (i > s.size()) return;
      k = i;
      i = k < s.size() ? next_char(s, k) : s.size() + 1;
    } else {
      k = finder.find(s, i);
      if (k == std::string_view::npos) return;
      i = k + old.size();
    }
    fn(k);
  }
}

// Python's str.replace; the size of the result is known (and refused when too long) before it is built.
std::string replaced(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
  size_t matches = 0;
  for_each_match(s, old, count, [&](size_t) { ++matches; });
  if (s.size() - matches * old.size() + matches * with.size() > kMaxStringSize) too_long();
  std::string out;
  size_t last = 0;
  for_each_match(s, old, count, [&](size_t k) {
    out.append(s.substr(last, k - last));
    out.append(with);
    last = k + old.size();
  });
  out.append(s.substr(last));
  return out;
}

// ---- Syntax tree -------------------------------------------------------------------------------------

enum class Op {
  Literal,
  Name,
  List,
  Attr,
  Item,
  Slice,
  Call,
  Method,
  Filter,
  Test,
  Neg,
  Pos,
  Not,
  And,
  Or,
  Binary,
  Compare,
  Cond
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  Op op;
  Pos pos;
  int depth = 1;
  Value value;       // Literal
  std::string name;  // Name, Attr, Call, Method, Filter, Test; Binary's operator
  // Operands: the object of Attr / Item / Slice (then start, stop, step, any null) / Method / Filter /
  // Test, then positional arguments, then keyword arguments (named by `keywords`). Compare: the operands,
  // with `keywords` holding the operators between them. Cond: then, condition, else (may be null).
  std::vector<ExprPtr> kids;
  std::vector<std::string> keywords;
  bool negated = false;  // Test: "is not"
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

enum class StmtKind { Text, Output, If, For, Set };

struct Branch {
  ExprPtr condition;  // null: the else branch
  Body body;
};

struct Stmt {
  StmtKind kind = StmtKind::Text;
  Pos pos;
  std::string text;                // Text
  ExprPtr value;                   // Output; For: the iterable; Set
  ExprPtr filter;                  // For: "if cond"
  std::vector<std::string> names;  // For: the loop variables; Set: the variable, then the namespace attribute
  std::vector<Branch> branches;    // If
  Body body;                       // For
};

// ---- Lexer -------------------------------------------------------------------------------------------

enum class Tok { Text, BlockBegin, BlockEnd, VarBegin, VarEnd, Name, String, Integer, Op, End };

struct Token {
  Tok kind;
  Pos pos;
  std::string text;  // Text, Name, Op; String: the decoded value
  int64_t integer = 0;
};

// Jinja normalizes newlines to "\n" and (keep_trailing_newline off) drops one at the end of the template.
std::string normalized_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\r') {
      out += s[i];
      continue;
    }
    out += '\n';
    if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_tag_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string rstrip_whitespace(std::string_view text) { return strip(text, nullptr, false, true); }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalized_newlines(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    bool line_starting = true;  // the text so far ends at the start of a line
    while (i_ < src_.size()) {
      const size_t tag = find_tag(i_);
      std::string text = src_.substr(i_, tag - i_);
      if (tag == std::string::npos) {
        add(Tok::Text, i_, std::move(text));
        break;
      }
      const char kind = src_[tag + 1];
      const char sign =
          tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      if (sign == '-')
        text = rstrip_whitespace(text);
      else if (sign == 0 && kind != '{')
        lstrip_block(text, line_starting);
      if (!text.empty()) add(Tok::Text, i_, std::move(text));
      i_ = tag + 2 + (sign ? 1 : 0);
      line_starting = kind == '#' ? lex_comment(tag) : lex_tag(tag, kind);
    }
    add(Tok::End, src_.size());
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  size_t i_ = 0;
  std::vector<Token> tokens_;
  size_t counted_ = 0;  // pos_at(counted_) is counted_pos_
  Pos counted_pos_;

  // Tokens come in order, so the position is counted on from the previous one (columns in code points).
  Pos pos_at(size_t offset) {
    if (offset < counted_) {
      const auto line = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
      counted_ = *line;
      counted_pos_ = {int(line - line_starts_.begin()) + 1, 1};
    }
    for (; counted_ < offset; ++counted_) {
      if (src_[counted_] == '\n')
        counted_pos_ = {counted_pos_.line + 1, 1};
      else
        counted_pos_.column += (uint8_t(src_[counted_]) & 0xC0) != 0x80;
    }
    return counted_pos_;
  }

  template <typename... Args>
  [[noreturn]] void error_at(size_t offset, fmt::format_string<Args...> f, Args&&... args) {
    syntax_error(pos_at(offset), f, std::forward<Args>(args)...);
  }

  void add(Tok kind, size_t offset, std::string text = {}, int64_t integer = 0) {
    tokens_.push_back({kind, pos_at(offset), std::move(text), integer});
  }

  // The next "{{", "{%" or "{#" at or after `from`.
  size_t find_tag(size_t from) const {
    for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1))
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    return std::string::npos;
  }

  // lstrip_blocks: whitespace between the start of a line and a block or comment tag is dropped.
  static void lstrip_block(std::string& text, bool line_starting) {
    const size_t newline = text.rfind('\n');
    const size_t line = newline == std::string::npos ? 0 : newline + 1;
    if (line == 0 && !line_starting) return;
    if (strip(std::string_view(text).substr(line), nullptr, true, true).empty()) text.erase(line);
  }

  // After "-%}", "-}}" or "-#}": all whitespace. Returns whether the last character skipped was a newline.
  bool skip_whitespace() {
    const size_t start = i_;
    while (i_ < src_.size()) {
      const size_t n = metrics::whitespace_length_at(src_, i_);
      if (n == 0) break;
      i_ += n;
    }
    return i_ > start && src_[i_ - 1] == '\n';
  }

  // trim_blocks: the first newline after a block or comment tag.
  bool trim_newline() {
    if (i_ >= src_.size() || src_[i_] != '\n') return false;
    ++i_;
    return true;
  }

  bool lex_comment(size_t tag) {
    const size_t end = src_.find("#}", i_);
    if (end == std::string::npos) error_at(tag, "the comment is not closed (no '#}}')");
    const bool strip_after = end > i_ && src_[end - 1] == '-';
    i_ = end + 2;
    return strip_after ? skip_whitespace() : trim_newline();
  }

  // The tokens of a "{%" or "{{" tag up to its end. Returns whether the tag's end consumed a newline.
  bool lex_tag(size_t tag, char kind) {
    const bool block = kind == '%';
    add(block ? Tok::BlockBegin : Tok::VarBegin, tag);
    const std::string_view close = block ? "%}" : "}}";
    while (true) {
      while (i_ < src_.size() && is_tag_space(src_[i_])) ++i_;
      if (i_ >= src_.size()) error_at(tag, "the tag is not closed (no '{}')", close);
      const std::string_view rest = std::string_view(src_).substr(i_);
      const char sign = rest[0] == '-' || (block && rest[0] == '+') ? rest[0] : 0;
      if (rest.substr(sign ? 1 : 0).starts_with(close)) {
        add(block ? Tok::BlockEnd : Tok::VarEnd, i_);
        i_ += close.size() + (sign ? 1 : 0);
        if (sign == '-') return skip_whitespace();
        return block && sign == 0 && trim_newline();
      }
      lex_token();
    }
  }

  void lex_token() {
    const size_t start = i_;
    const char c = src_[i_];
    if (is_name_start(c)) {
      while (i_ < src_.size() && is_name_char(src_[i_])) ++i_;
      return add(Tok::Name, start, src_.substr(start, i_ - start));
    }
    if (is_digit(c)) return lex_integer();
    if (c == '\'' || c == '"') return lex_string();
    for (const std::string_view op : {"//", "**", "==", "!=", "<=", ">="})
      if (std::string_view(src_).substr(i_).starts_with(op)) {
        i_ += 2;
        return add(Tok::Op, start, std::string(op));
      }
    if (std::string_view("+-*/%~()[]{},.:|=<>").find(c) != std::string_view::npos) {
      ++i_;
      return add(Tok::Op, start, std::string(1, c));
    }
    if (uint8_t(c) < 0x20 || uint8_t(c) >= 0x7F)
      error_at(start, "unexpected character \\x{:02x}", uint8_t(c));
    error_at(start, "unexpected character '{}'", c);
  }

  void lex_integer() {
    const size_t start = i_;
    int64_t value = 0;
    for (; i_ < src_.size(); ++i_) {
      if (src_[i_] == '_' && i_ + 1 < src_.size() && is_digit(src_[i_ + 1])) continue;
      if (!is_digit(src_[i_])) break;
      if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, src_[i_] - '0', &value))
        error_at(start, "integer literal out of range");
    }
    const std::string_view rest = std::string_view(src_).substr(i_);
    const bool fraction = rest.size() > 1 && rest[0] == '.' && is_digit(rest[1]);
    const bool exponent = !rest.empty() && (rest[0] == 'e' || rest[0] == 'E') &&
                          ((rest.size() > 1 && is_digit(rest[1])) ||
                           (rest.size() > 2 && (rest[1] == '+' || rest[1] == '-') && is_digit(rest[2])));
    if (fraction || exponent) error_at(start, "floating-point numbers are not supported");
    add(Tok::Integer, start, src_.substr(start, i_ - start), value);
  }

  void lex_string() {
    const size_t start = i_;
    const char quote = src_[i_++];
    std::string value;
    while (true) {
      if (i_ >= src_.size()) error_at(start, "unterminated string");
      const char c = src_[i_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
      } else {
        if (i_ >= src_.size()) error_at(start, "unterminated string");
        lex_escape(value);
      }
    }
    add(Tok::String, start, std::move(value));
  }

  // Python's escapes, after the backslash; an unknown one stays as written ("\q").
  void lex_escape(std::string& value) {
    const size_t at = i_ - 1;
    const char e = src_[i_++];
    static constexpr std::string_view kSimple = "\\'\"abfnrtv", kMeaning = "\\'\"\a\b\f\n\r\t\v";
    if (const size_t k = kSimple.find(e); k != std::string_view::npos) {
      value += kMeaning[k];
    } else if (e == '\n') {
      // a backslash before a newline continues the line
    } else if (e == 'x' || e == 'u' || e == 'U') {
      append_code_point(value, hex_digits(e == 'x' ? 2 : e == 'u' ? 4 : 8, at), at);
    } else if (e >= '0' && e <= '7') {
      char32_t c = char32_t(e - '0');
      for (int k = 0; k < 2 && i_ < src_.size() && src_[i_] >= '0' && src_[i_] <= '7'; ++k)
        c = c * 8 + char32_t(src_[i_++] - '0');
      append_code_point(value, c, at);
    } else if (e == 'N') {
      error_at(at, "\\N{{...}} escapes are not supported");
    } else {
      value += '\\';
      value += e;
    }
  }

  char32_t hex_digits(int n, size_t at) {
    char32_t c = 0;
    for (int k = 0; k < n; ++k, ++i_) {
      const char h = i_ < src_.size() ? src_[i_] : 0;
      const int d = is_digit(h)              ? h - '0'
                    : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                    : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                             : -1;
      if (d < 0) error_at(at, "truncated \\{} escape", src_[at + 1]);
      c = c * 16 + char32_t(d);
    }
    return c;
  }

  void append_code_point(std::string& value, char32_t c, size_t at) {
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) error_at(at, "escape for an invalid code point");
    append_utf8(value, c);
  }
};

// ---- Parser ------------------------------------------------------------------------------------------

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::Text:
      return "text";
    case Tok::BlockBegin:
      return "'{%'";
    case Tok::BlockEnd:
      return "'%}'";
    case Tok::VarBegin:
      return "'{{'";
    case Tok::VarEnd:
      return "'}}'";
    case Tok::String:
      return "a string";
    case Tok::End:
      return "the end of the template";
    default:
      return "'" + t.text + "'";
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse_template() { return parse_body({}, nullptr); }

 private:
  std::vector<Token> tokens_;  // ends with Tok::End
  size_t at_ = 0;
  int syntax_depth_ = 0, expression_depth_ = 0;

  // One level of nesting for as long as it lives; too deep is a parse error.
  class Nesting {
   public:
    Nesting(int& depth, int limit, const char* what, Pos pos) : depth_(depth) {
      if (++depth_ > limit) syntax_error(pos, "{} nested more than {} deep", what, limit);
    }
    ~Nesting() { --depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    int& depth_;
  };
  Nesting syntax_nesting(Pos pos) { return Nesting(syntax_depth_, kMaxSyntaxDepth, "syntax", pos); }
  Nesting expression_nesting(Pos pos) { return Nesting(expression_depth_, kMaxExprDepth, "expression", pos); }

  const Token& peek(size_t ahead = 0) const { return tokens_[std::min(at_ + ahead, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[at_];
    if (t.kind != Tok::End) ++at_;
    return t;
  }
  static bool is_op(const Token& t, std::string_view op) { return t.kind == Tok::Op && t.text == op; }
  static bool is_name(const Token& t, std::string_view name) { return t.kind == Tok::Name && t.text == name; }
  bool accept_op(std::string_view op) { return is_op(peek(), op) && (next(), true); }
  bool accept_name(std::string_view name) { return is_name(peek(), name) && (next(), true); }

  void expect_op(std::string_view op) {
    if (!accept_op(op)) syntax_error(peek().pos, "expected '{}', found {}", op, describe(peek()));
  }
  void expect(Tok kind, const char* what) {
    if (peek().kind != kind) syntax_error(peek().pos, "expected {}, found {}", what, describe(peek()));
    next();
  }
  void expect_block_end() { expect(Tok::BlockEnd, "'%}'"); }
  std::string expect_name(const char* what) {
    if (peek().kind != Tok::Name) syntax_error(peek().pos, "expected {}, found {}", what, describe(peek()));
    return next().text;
  }

  ExprPtr node(Op op, Pos pos, std::vector<ExprPtr> kids, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->op = op, e->pos = pos, e->name = std::move(name);
    for (const ExprPtr& kid : kids)
      if (kid) e->depth = std::max(e->depth, kid->depth + 1);
    if (e->depth > kMaxExprDepth) syntax_error(pos, "expression nested more than {} deep", kMaxExprDepth);
    e->kids = std::move(kids);
    return e;
  }

  // Statements up to a block tag named in `ends` (left unread) or, at the top (opener null), the end.
  Body parse_body(std::initializer_list<std::string_view> ends, const Token* opener) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == Tok::End) {
        if (opener)
          syntax_error(t.pos, "unexpected end of template: the '{}' at line {}, column {} is not closed",
                       opener->text, opener->pos.line, opener->pos.column);
        return body;
      }
      if (t.kind == Tok::BlockBegin && peek(1).kind == Tok::Name &&
          std::find(ends.begin(), ends.end(), peek(1).text) != ends.end())
        return body;
      body.push_back(parse_statement());
    }
  }

  // Reads the "{% name" of the tag that ended a body and returns the name.
  const Token& end_tag() {
    next();
    return next();
  }

  std::unique_ptr<Stmt> parse_statement() {
    const Token& t = next();
    auto stmt = std::make_unique<Stmt>();
    stmt->pos = t.pos;
    if (t.kind == Tok::Text) {
      stmt->text = t.text;
    } else if (t.kind == Tok::VarBegin) {
      stmt->kind = StmtKind::Output;
      stmt->value = parse_expression();
      expect(Tok::VarEnd, "'}}'");
    } else if (t.kind == Tok::BlockBegin) {
      parse_tag(*stmt);
    } else {
      syntax_error(t.pos, "unexpected {}", describe(t));
    }
    return stmt;
  }

  void parse_tag(Stmt& stmt) {
    const Token& name = peek();
    if (name.kind != Tok::Name) syntax_error(name.pos, "expected a tag name, found {}", describe(name));
    next();
    stmt.pos = name.pos;
    if (name.text == "if") return parse_if(stmt, name);
    if (name.text == "for") return parse_for(stmt, name);
    if (name.text == "set") return parse_set(stmt);
    if (name.text == "elif" || name.text == "else" || name.text == "endif" || name.text == "endfor")
      syntax_error(name.pos, "unexpected '{}'", name.text);
    syntax_error(name.pos, "unsupported tag '{}'", name.text);
  }

  void parse_if(Stmt& stmt, const Token& opener) {
    const Nesting nesting = syntax_nesting(opener.pos);
    stmt.kind = StmtKind::If;
    ExprPtr condition = parse_expression();
    while (true) {
      expect_block_end();
      Body body = parse_body({"elif", "else", "endif"}, &opener);
      stmt.branches.push_back({std::move(condition), std::move(body)});
      const Token& tag = end_tag();
      if (tag.text == "elif") {
        condition = parse_expression();
        continue;
      }
      if (tag.text == "else") {
        expect_block_end();
        stmt.branches.push_back({nullptr, parse_body({"endif"}, &opener)});
        end_tag();
      }
      return expect_block_end();
    }
  }

  void parse_for(Stmt& stmt, const Token& opener) {
    const Nesting nesting = syntax_nesting(opener.pos);
    stmt.kind = StmtKind::For;
    do stmt.names.push_back(expect_name("a loop variable"));
    while (accept_op(","));
    if (!accept_name("in")) syntax_error(peek().pos, "expected 'in', found {}", describe(peek()));
    stmt.value = parse_or();  // without "a if b else c", so that "if" starts the loop's filter
    if (accept_name("if")) stmt.filter = parse_expression();
    if (is_name(peek(), "recursive")) syntax_error(peek().pos, "recursive loops are not supported");
    expect_block_end();
    stmt.body = parse_body({"endfor", "else"}, &opener);
    const Token& tag = end_tag();
    if (tag.text == "else") syntax_error(tag.pos, "{{% else %}} in a for loop is not supported");
    expect_block_end();
  }

  void parse_set(Stmt& stmt) {
    stmt.kind = StmtKind::Set;
    stmt.names.push_back(expect_name("a variable name"));
    if (accept_op(".")) stmt.names.push_back(expect_name("an attribute name"));
    if (peek().kind == Tok::BlockEnd) syntax_error(peek().pos, "{{% set %}} blocks are not supported");
    if (is_op(peek(), ",")) syntax_error(peek().pos, "unpacking in {{% set %}} is not supported");
    expect_op("=");
    stmt.value = parse_expression();
    expect_block_end();
  }

  // a if cond else b (the else is optional: undefined without it).
  ExprPtr parse_expression() {
    const Nesting nesting = expression_nesting(peek().pos);
    ExprPtr e = parse_or();
    while (is_name(peek(), "if")) {
      const Pos pos = next().pos;
      ExprPtr condition = parse_or();
      ExprPtr otherwise = accept_name("else") ? parse_expression() : nullptr;
      std::vector<ExprPtr> kids;
      kids.push_back(std::move(e)), kids.push_back(std::move(condition)),
          kids.push_back(std::move(otherwise));
      e = node(Op::Cond, pos, std::move(kids));
    }
    return e;
  }

  ExprPtr binary(Op op, Pos pos, ExprPtr a, ExprPtr b, std::string name = {}) {
    std::vector<ExprPtr> kids;
    kids.push_back(std::move(a)), kids.push_back(std::move(b));
    return node(op, pos, std::move(kids), std::move(name));
  }

  ExprPtr unary(Op op, Pos pos, ExprPtr a) {
    std::vector<ExprPtr> kids;
    kids.push_back(std::move(a));
    return node(op, pos, std::move(kids));
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name(peek(), "or")) {
      const Pos pos = next().pos;
      e = binary(Op::Or, pos, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name(peek(), "and")) {
      const Pos pos = next().pos;
      e = binary(Op::And, pos, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (!is_name(peek(), "not")) return parse_compare();
    const Pos pos = next().pos;
    const Nesting nesting = expression_nesting(pos);
    return unary(Op::Not, pos, parse_not());
  }

  // The comparison operator at the next token ("not in" is two), or "".
  std::string comparison() const {
    const Token& t = peek();
    if (t.kind == Tok::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" ||
                              t.text == "<=" || t.text == ">="))
      return t.text;
    if (is_name(t, "in")) return "in";
    if (is_name(t, "not") && is_name(peek(1), "in")) return "not in";
    return "";
  }

  // a < b < c means a < b and b < c, as in Python.
  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    if (comparison().empty()) return first;
    const Pos pos = peek().pos;
    std::vector<ExprPtr> kids;
    std::vector<std::string> ops;
    kids.push_back(std::move(first));
    for (std::string op = comparison(); !op.empty(); op = comparison()) {
      next();
      if (op == "not in") next();
      ops.push_back(op);
      kids.push_back(parse_math1());
    }
    ExprPtr e = node(Op::Compare, pos, std::move(kids));
    e->keywords = std::move(ops);
    return e;
  }

  // Jinja's precedence: + and - bind more loosely than ~, which binds more loosely than * // %.
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op(peek(), "+") || is_op(peek(), "-")) {
      const Token& op = next();
      e = binary(Op::Binary, op.pos, std::move(e), parse_concat(), op.text);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op(peek(), "~")) {
      const Pos pos = next().pos;
      e = binary(Op::Binary, pos, std::move(e), parse_math2(), "~");
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_unary(true);
    while (true) {
      const Token& t = peek();
      if (is_op(t, "/")) syntax_error(t.pos, "'/' (true division) is not supported; use '//'");
      if (is_op(t, "**")) syntax_error(t.pos, "'**' is not supported");
      if (!is_op(t, "*") && !is_op(t, "//") && !is_op(t, "%")) return e;
      next();
      e = binary(Op::Binary, t.pos, std::move(e), parse_unary(true), t.text);
    }
  }

  // As Jinja: the operand of unary - and + takes no filters, the result does ("-x | f" is "(-x) | f").
  ExprPtr parse_unary(bool with_filters) {
    const Token& t = peek();
    ExprPtr e;
    if (is_op(t, "-") || is_op(t, "+")) {
      next();
      const Nesting nesting = expression_nesting(t.pos);
      e = unary(t.text == "-" ? Op::Neg : Op::Pos, t.pos, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filters ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprPtr literal(Pos pos, Value value) {
    ExprPtr e = node(Op::Literal, pos, {});
    e->value = std::move(value);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = next();
    if (t.kind == Tok::Name) {
      if (t.text == "true" || t.text == "True") return literal(t.pos, Value{true});
      if (t.text == "false" || t.text == "False") return literal(t.pos, Value{false});
      if (t.text == "none" || t.text == "None") return literal(t.pos, Value{None{}});
      return node(Op::Name, t.pos, {}, t.text);
    }
    if (t.kind == Tok::String) {
      std::string s = t.text;
      while (peek().kind == Tok::String) s += next().text;  // adjacent strings join
      return literal(t.pos, Value{std::make_shared<const std::string>(std::move(s))});
    }
    if (t.kind == Tok::Integer) return literal(t.pos, Value{t.integer});
    if (is_op(t, "(")) return parse_parenthesized(t.pos);
    if (is_op(t, "[")) return parse_list(t.pos);
    if (is_op(t, "{")) syntax_error(t.pos, "dict literals are not supported");
    syntax_error(t.pos, "unexpected {}", describe(t));
  }

  ExprPtr parse_parenthesized(Pos pos) {
    const Nesting nesting = syntax_nesting(pos);
    if (is_op(peek(), ")")) syntax_error(pos, "tuples are not supported");
    ExprPtr e = parse_expression();
    if (is_op(peek(), ",")) syntax_error(peek().pos, "tuples are not supported");
    expect_op(")");
    return e;
  }

  ExprPtr parse_list(Pos pos) {
    const Nesting nesting = syntax_nesting(pos);
    std::vector<ExprPtr> items;
    while (!accept_op("]")) {
      items.push_back(parse_expression());
      if (!is_op(peek(), "]")) expect_op(",");
    }
    return node(Op::List, pos, std::move(items));
  }

  // After "(": positional arguments are appended to `kids`, then keyword arguments, named in `keywords`.
  void parse_arguments(std::vector<ExprPtr>& kids, std::vector<std::string>& keywords, Pos pos) {
    const Nesting nesting = syntax_nesting(pos);
    while (!accept_op(")")) {
      if (peek().kind == Tok::Name && is_op(peek(1), "=")) {
        keywords.push_back(next().text);
        next();
      } else if (!keywords.empty()) {
        syntax_error(peek().pos, "a positional argument follows a keyword argument");
      }
      kids.push_back(parse_expression());
      if (!is_op(peek(), ")")) expect_op(",");
    }
  }

  // `name(...)` on the operand(s) in `kids`.
  ExprPtr call(Op op, Pos pos, std::vector<ExprPtr> kids, std::string name) {
    std::vector<std::string> keywords;
    parse_arguments(kids, keywords, pos);
    ExprPtr e = node(op, pos, std::move(kids), std::move(name));
    e->keywords = std::move(keywords);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const Token& t = peek();
      if (is_op(t, ".")) {
        next();
        std::string name = expect_name("an attribute name");
        std::vector<ExprPtr> kids;
        kids.push_back(std::move(e));
        e = accept_op("(") ? call(Op::Method, t.pos, std::move(kids), std::move(name))
                           : node(Op::Attr, t.pos, std::move(kids), std::move(name));
      } else if (is_op(t, "[")) {
        next();
        e = parse_subscript(std::move(e), t.pos);
      } else if (is_op(t, "(")) {
        if (e->op != Op::Name) syntax_error(t.pos, "only functions and methods can be called");
        next();
        e = call(Op::Call, e->pos, {}, e->name);
      } else {
        return e;
      }
    }
  }

  // After "[": obj[index] or obj[start:stop:step], each part optional.
  ExprPtr parse_subscript(ExprPtr obj, Pos pos) {
    const Nesting nesting = syntax_nesting(pos);
    std::vector<ExprPtr> kids;
    kids.push_back(std::move(obj));
    kids.push_back(is_op(peek(), ":") ? nullptr : parse_expression());
    if (accept_op("]")) return node(Op::Item, pos, std::move(kids));
    expect_op(":");
    kids.push_back(is_op(peek(), ":") || is_op(peek(), "]") ? nullptr : parse_expression());
    if (accept_op(":")) kids.push_back(is_op(peek(), "]") ? nullptr : parse_expression());
    expect_op("]");
    kids.resize(4);
    return node(Op::Slice, pos, std::move(kids));
  }

  // Whether a token after "is name" would be the test's argument in Jinja ("is divisibleby 3").
  bool starts_test_argument(const Token& t) const {
    if (t.kind == Tok::Name) return t.text != "else" && t.text != "or" && t.text != "and";
    return t.kind == Tok::String || t.kind == Tok::Integer || is_op(t, "(") || is_op(t, "[") || is_op(t, "{");
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      const Token& t = peek();
      if (is_op(t, "|")) {
        next();
        std::string name = expect_name("a filter name");
        std::vector<ExprPtr> kids;
        kids.push_back(std::move(e));
        e = accept_op("(") ? call(Op::Filter, t.pos, std::move(kids), std::move(name))
                           : node(Op::Filter, t.pos, std::move(kids), std::move(name));
      } else if (is_name(t, "is")) {
        next();
        const bool negated = accept_name("not");
        std::string name = expect_name("a test name");
        if (starts_test_argument(peek())) syntax_error(peek().pos, "tests with arguments are not supported");
        e = unary(Op::Test, t.pos, std::move(e));
        e->name = std::move(name), e->negated = negated;
      } else {
        return e;
      }
    }
  }
};

// ---- Evaluator ---------------------------------------------------------------------------------------

struct Args {
  std::vector<Value> positional;
  Entries named;
};

// Python's argument binding of `args` to `params`: positional ones in order, keyword ones by name; the
// first `required` must be given. One not given is undefined.
std::vector<Value> bind(const Args& args, std::string_view what,
                        std::initializer_list<std::string_view> params, size_t required = 0) {
  if (args.positional.size() > params.size())
    fault("{}() takes at most {} arguments ({} given)", what, params.size(), args.positional.size());
  std::vector<Value> bound(params.size());
  std::vector<bool> given(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i], given[i] = true;
  for (const auto& [name, value] : args.named) {
    const auto* it = std::find(params.begin(), params.end(), name);
    if (it == params.end()) fault("{}() got an unexpected keyword argument '{}'", what, name);
    const size_t i = size_t(it - params.begin());
    if (given[i]) fault("{}() got multiple values for argument '{}'", what, name);
    bound[i] = value, given[i] = true;
  }
  for (size_t i = 0; i < required; ++i)
    if (!given[i]) fault("{}() missing required argument '{}'", what, *(params.begin() + i));
  return bound;
}

bool absent(const Value& v) { return v.undefined() || v.as<None>(); }

int64_t int_arg(const Value& v, std::string_view what) {
  const auto i = integer(v);
  if (!i) fault("{}() expects an integer, not '{}'", what, type_name(v));
  return *i;
}

const std::string& str_arg(const Value& v, std::string_view what) {
  const std::string* s = string_of(v);
  if (!s) fault("{}() expects a string, not '{}'", what, type_name(v));
  return *s;
}

// A string argument, or null when it is none or not given.
const std::string* optional_str_arg(const Value& v, std::string_view what) {
  return absent(v) ? nullptr : &str_arg(v, what);
}

bool run_test(const std::string& name, const Value& v) {
  if (name == "defined") return !v.undefined();
  if (name == "undefined") return v.undefined();
  if (name == "none") return v.as<None>();
  if (name == "string") return v.as<Str>();
  if (name == "number") return integer(v).has_value();
  if (name == "integer") return v.as<int64_t>();
  if (name == "boolean") return v.as<bool>();
  if (name == "true" || name == "false") return v.as<bool>() && *v.as<bool>() == (name == "true");
  if (name == "mapping") return v.as<Dict>();
  // Jinja's sequence and iterable tests accept Undefined too (it has a length and iterates as empty).
  if (name == "sequence" || name == "iterable")
    return v.undefined() || v.as<Str>() || v.as<List>() || v.as<Dict>();
  fault("unknown test '{}'", name);
}

Value loop_value(int64_t index, int64_t length) {
  Entries e = {{"index", Value{index + 1}},
               {"index0", Value{index}},
               {"revindex", Value{length - index}},
               {"revindex0", Value{length - index - 1}},
               {"first", Value{index == 0}},
               {"last", Value{index == length - 1}},
               {"length", Value{length}}};
  return Value{std::make_shared<const DictData>(DictData{std::move(e), 1})};
}

class Renderer {
 public:
  explicit Renderer(Entries globals) { frames_.push_back(std::move(globals)); }

  std::string run(const Body& body) {
    exec_body(body);
    return std::move(out_);
  }

 private:
  std::vector<Entries> frames_;  // globals, then one frame per for-loop iteration being run
  std::string out_;
  Budget budget_;

  // A for-loop iteration's variables, gone when it ends.
  class Scope {
   public:
    explicit Scope(std::vector<Entries>& frames) : frames_(frames) { frames_.emplace_back(); }
    ~Scope() { frames_.pop_back(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    std::vector<Entries>& frames_;
  };

  Value lookup(const std::string& name) const {
    for (auto frame = frames_.rbegin(); frame != frames_.rend(); ++frame)
      if (const Value* v = find_entry(*frame, name)) return *v;
    return Value{Undefined{fmt::format("'{}' is undefined", name)}};
  }

  void emit(std::string_view s) {
    if (out_.size() + s.size() > kMaxStringSize) fault("the output is longer than {} bytes", kMaxStringSize);
    budget_.bytes(s.size());
    out_ += s;
  }

  void exec_body(const Body& body) {
    for (const auto& stmt : body) exec(*stmt);
  }

  void exec(const Stmt& s) {
    try {
      budget_.step();
      switch (s.kind) {
        case StmtKind::Text:
          return emit(s.text);
        case StmtKind::Output:
          return emit_value(eval(*s.value));
        case StmtKind::If:
          return exec_if(s);
        case StmtKind::For:
          return exec_for(s);
        case StmtKind::Set:
          return exec_set(s);
      }
    } catch (const Fault& f) {
      throw positioned(s.pos, f.message);
    }
  }

  void emit_value(const Value& v) {
    if (const std::string* s = string_of(v)) return emit(*s);
    emit(to_str(v, budget_));
  }

  void exec_if(const Stmt& s) {
    for (const Branch& branch : s.branches)
      if (!branch.condition || truthy(eval(*branch.condition))) return exec_body(branch.body);
  }

  void bind_targets(const Stmt& s, const Value& item) {
    if (s.names.size() == 1) return set_entry(frames_.back(), s.names[0], item);
    const std::vector<Value> parts = iterate(defined(item), budget_);
    if (parts.size() != s.names.size())
      fault("cannot unpack {} values into {} loop variables", parts.size(), s.names.size());
    for (size_t i = 0; i < parts.size(); ++i) set_entry(frames_.back(), s.names[i], parts[i]);
  }

  // Jinja filters the items first, so loop.index and loop.length count only those that pass.
  std::vector<Value> filtered(const Stmt& s, std::vector<Value> items) {
    std::vector<Value> kept;
    for (Value& item : items) {
      const Scope scope(frames_);
      bind_targets(s, item);
      if (truthy(eval(*s.filter))) kept.push_back(std::move(item));
    }
    return kept;
  }

  void exec_for(const Stmt& s) {
    std::vector<Value> items = iterate(eval(*s.value), budget_);
    if (s.filter) items = filtered(s, std::move(items));
    const int64_t n = int64_t(items.size());
    for (int64_t i = 0; i < n; ++i) {
      budget_.step();
      const Scope scope(frames_);
      bind_targets(s, items[size_t(i)]);
      set_entry(frames_.back(), "loop", loop_value(i, n));
      exec_body(s.body);
    }
  }

  void exec_set(const Stmt& s) {
    Value v = eval(*s.value);
    if (s.names.size() == 1) return set_entry(frames_.back(), s.names[0], std::move(v));
    const Value target = lookup(s.names[0]);
    const Namespace* ns = target.as<Namespace>();
    if (!ns) fault("cannot assign attribute on non-namespace object '{}'", s.names[0]);
    check_storable(v);
    set_entry((*ns)->attrs, s.names[1], std::move(v));
  }

  Value eval(const Expr& e) {
    try {
      budget_.step();
      return eval_node(e);
    } catch (const Fault& f) {
      throw positioned(e.pos, f.message);
    }
  }

  Value eval_node(const Expr& e) {
    switch (e.op) {
      case Op::Literal:
        return e.value;
      case Op::Name:
        return lookup(e.name);
      case Op::List:
        return eval_list(e);
      case Op::Attr:
        return attribute(eval(*e.kids[0]), e.name);
      case Op::Item:
        return subscript(eval(*e.kids[0]), eval(*e.kids[1]), budget_);
      case Op::Slice:
        return eval_slice(e);
      case Op::Call:
        return call_function(e);
      case Op::Method:
        return call_method(e);
      case Op::Filter:
        return apply_filter(e);
      case Op::Test:
        return Value{run_test(e.name, eval(*e.kids[0])) != e.negated};
      case Op::Neg:
        return negate(eval(*e.kids[0]));
      case Op::Pos:
        return Value{int_arg(defined(eval(*e.kids[0])), "unary +")};
      case Op::Not:
        return Value{!truthy(eval(*e.kids[0]))};
      case Op::And: {
        Value a = eval(*e.kids[0]);
        return truthy(a) ? eval(*e.kids[1]) : a;
      }
      case Op::Or: {
        Value a = eval(*e.kids[0]);
        return truthy(a) ? a : eval(*e.kids[1]);
      }
      case Op::Binary: {
        const Value a = eval(*e.kids[0]);
        return arithmetic(e.name, a, eval(*e.kids[1]), budget_);
      }
      case Op::Compare:
        return Value{eval_compare(e)};
      case Op::Cond:
        if (truthy(eval(*e.kids[1]))) return eval(*e.kids[0]);
        return e.kids[2] ? eval(*e.kids[2]) : Value{Undefined{"the if-expression is false and has no else"}};
    }
    __builtin_unreachable();
  }

  Value eval_list(const Expr& e) {
    std::vector<Value> items;
    for (const ExprPtr& kid : e.kids) items.push_back(eval(*kid));
    return list_value(std::move(items), budget_);
  }

  std::optional<int64_t> slice_index(const ExprPtr& part) {
    if (!part) return std::nullopt;
    const Value v = eval(*part);
    if (v.as<None>()) return std::nullopt;
    const auto i = integer(v);
    if (!i) fault("slice indices must be integers or None, not '{}'", type_name(v));
    return i;
  }

  Value eval_slice(const Expr& e) {
    const Value obj = eval(*e.kids[0]);
    const auto start = slice_index(e.kids[1]), stop = slice_index(e.kids[2]), step = slice_index(e.kids[3]);
    return slice(obj, start, stop, step, budget_);
  }

  bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return equal(a, b, budget_);
    if (op == "!=") return !equal(a, b, budget_);
    if (op == "in") return contains(b, a, budget_);
    if (op == "not in") return !contains(b, a, budget_);
    const int o = order(a, b, op, budget_);
    return op == "<" ? o < 0 : op == "<=" ? o <= 0 : op == ">" ? o > 0 : o >= 0;
  }

  bool eval_compare(const Expr& e) {
    Value left = eval(*e.kids[0]);
    for (size_t i = 0; i < e.keywords.size(); ++i) {
      Value right = eval(*e.kids[i + 1]);
      if (!compare(e.keywords[i], left, right)) return false;
      left = std::move(right);
    }
    return true;
  }

  // The arguments of a Call (operands from 0), Method or Filter (from 1).
  Args eval_args(const Expr& e, size_t first) {
    Args args;
    const size_t named = e.kids.size() - e.keywords.size();
    for (size_t i = first; i < named; ++i) args.positional.push_back(eval(*e.kids[i]));
    for (size_t k = 0; k < e.keywords.size(); ++k)
      args.named.emplace_back(e.keywords[k], eval(*e.kids[named + k]));
    return args;
  }

  Value call_function(const Expr& e) {
    const Args args = eval_args(e, 0);
    if (e.name == "raise_exception") {
      const std::vector<Value> p = bind(args, e.name, {"message"}, 1);
      throw Error(to_str(p[0], budget_));  // the template's own message, as it wrote it
    }
    if (e.name == "namespace") return make_namespace(args);
    if (e.name == "range") return range(args);
    defined(lookup(e.name));
    fault("'{}' is not callable", e.name);
  }

  Value make_namespace(const Args& args) {
    if (!args.positional.empty()) fault("namespace() takes keyword arguments only");
    auto ns = std::make_shared<NamespaceData>();
    for (const auto& [name, value] : args.named) {
      check_storable(value);
      set_entry(ns->attrs, name, value);
    }
    return Value{std::move(ns)};
  }

  Value range(const Args& args) {
    const auto& p = args.positional;
    if (!args.named.empty()) fault("range() takes no keyword arguments");
    if (p.empty() || p.size() > 3) fault("range() takes 1 to 3 arguments ({} given)", p.size());
    const int64_t start = p.size() == 1 ? 0 : int_arg(p[0], "range");
    const int64_t stop = int_arg(p.size() == 1 ? p[0] : p[1], "range");
    const int64_t step = p.size() == 3 ? int_arg(p[2], "range") : 1;
    if (step == 0) fault("range() arg 3 must not be zero");
    const __int128 span = step > 0 ? __int128(stop) - start : __int128(start) - stop;
    const __int128 count = span > 0 ? (span - 1) / (step > 0 ? __int128(step) : -__int128(step)) + 1 : 0;
    if (count > kMaxRange) fault("range() of more than {} items", kMaxRange);
    std::vector<Value> items;
    for (int64_t k = 0; k < int64_t(count); ++k) items.push_back(Value{start + k * step});
    return list_value(std::move(items), budget_);
  }

  Value call_method(const Expr& e) {
    const Value obj = eval(*e.kids[0]);
    const Args args = eval_args(e, 1);
    if (const std::string* s = string_of(defined(obj))) return string_method(*s, e.name, args);
    if (const Dict* d = obj.as<Dict>()) return dict_method(**d, e.name, args);
    fault("'{}' object has no method '{}'", type_name(obj), e.name);
  }

  Value string_method(const std::string& s, const std::string& name, const Args& args) {
    budget_.bytes(s.size());
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const std::vector<Value> p = bind(args, name, {"chars"});
      return stripped(s, optional_str_arg(p[0], name), name != "rstrip", name != "lstrip");
    }
    if (name == "upper" || name == "lower") {
      bind(args, name, {});
      return string_value(change_case(s, name == "upper"), budget_);
    }
    if (name == "startswith" || name == "endswith") {
      const std::string& affix = str_arg(bind(args, name, {"affix"}, 1)[0], name);
      return Value{name == "startswith" ? s.starts_with(affix) : s.ends_with(affix)};
    }
    if (name == "split") return split(s, optional_str_arg(bind(args, name, {"sep"})[0], name));
    if (name == "replace") {
      const std::vector<Value> p = bind(args, name, {"old", "new", "count"}, 2);
      const int64_t count = absent(p[2]) ? -1 : int_arg(p[2], name);
      return replace_value(s, str_arg(p[0], name), str_arg(p[1], name), count);
    }
    fault("str.{}() is not supported", name);
  }

  Value stripped(const std::string& s, const std::string* chars, bool left, bool right) {
    if (chars) budget_.step(int64_t(chars->size()));  // a set lookup per character: dearer than copying
    return string_value(strip(s, chars, left, right), budget_);
  }

  Value replace_value(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
    budget_.bytes(old.size());
    return string_value(replaced(s, old, with, count), budget_);
  }

  // Python's str.split(): on runs of whitespace without a separator, else on each separator.
  Value split(const std::string& s, const std::string* sep) {
    std::vector<Value> parts;
    auto add = [&](std::string_view part) {
      check_list_size(parts.size() + 1);
      parts.push_back(string_value(std::string(part), budget_));
    };
    if (!sep) {
      for (const std::string_view word : metrics::split_whitespace(s)) add(word);
    } else {
      if (sep->empty()) fault("empty separator");
      budget_.bytes(sep->size());
      const Finder finder(*sep);
      size_t start = 0;
      for (size_t k = finder.find(s, 0); k != std::string::npos; k = finder.find(s, start)) {
        add(std::string_view(s).substr(start, k - start));
        start = k + sep->size();
      }
      add(std::string_view(s).substr(start));
    }
    return list_value(std::move(parts), budget_);
  }

  Value dict_method(const DictData& d, const std::string& name, const Args& args) {
    if (name == "items") return bind(args, name, {}), items_of(d, budget_);
    if (name == "keys" || name == "values") {
      bind(args, name, {});
      std::vector<Value> out;
      for (const auto& [key, value] : d.entries)
        out.push_back(name == "keys" ? string_value(key, budget_) : value);
      return list_value(std::move(out), budget_);
    }
    if (name == "get") {
      const std::vector<Value> p = bind(args, name, {"key", "default"}, 1);
      const std::string* key = string_of(p[0]);
      const Value* v = key ? find_entry(d.entries, *key) : nullptr;
      return v ? *v : p[1].undefined() ? Value{None{}} : p[1];
    }
    fault("dict.{}() is not supported", name);
  }

  Value apply_filter(const Expr& e) {
    const Value v = eval(*e.kids[0]);
    const Args args = eval_args(e, 1);
    const std::string& f = e.name;
    if (f == "trim" || f == "upper" || f == "lower" || f == "string" || f == "replace")
      return string_filter(f, v, args);
    if (f == "length" || f == "count") return bind(args, f, {}), Value{length(v)};
    if (f == "tojson") return tojson(v, args);
    if (f == "default" || f == "d") {
      const std::vector<Value> p = bind(args, f, {"default_value", "boolean"});
      if (!v.undefined() && !(truthy(p[1]) && !truthy(v))) return v;
      return p[0].undefined() ? string_value("", budget_) : p[0];
    }
    if (f == "first" || f == "last") return bind(args, f, {}), first_or_last(v, f == "last");
    if (f == "join") return join(v, args);
    if (f == "list") return bind(args, f, {}), list_value(iterate(v, budget_), budget_);
    if (f == "items") {
      bind(args, f, {});
      if (v.undefined()) return list_value({}, budget_);
      if (const Dict* d = v.as<Dict>()) return items_of(**d, budget_);
      fault("can only get item pairs from a mapping, not '{}'", type_name(v));
    }
    fault("unknown or unsupported filter '{}'", f);
  }

  // The filters that work on str(value), as Jinja's do (so Undefined is "").
  Value string_filter(const std::string& f, const Value& v, const Args& args) {
    const std::string s = to_str(v, budget_);
    budget_.bytes(s.size());
    if (f == "trim") return stripped(s, optional_str_arg(bind(args, f, {"chars"})[0], f), true, true);
    if (f == "upper" || f == "lower")
      return bind(args, f, {}), string_value(change_case(s, f == "upper"), budget_);
    if (f == "string") return bind(args, f, {}), v.as<Str>() ? v : string_value(s, budget_);
    const std::vector<Value> p = bind(args, f, {"old", "new", "count"}, 2);
    const int64_t count = absent(p[2]) ? -1 : int_arg(p[2], f);
    return replace_value(s, to_str(p[0], budget_), to_str(p[1], budget_), count);
  }

  int64_t length(const Value& v) {
    if (v.undefined()) return 0;
    if (const std::string* s = string_of(v)) {
      budget_.bytes(s->size());
      return int64_t(char_offsets(*s).size() - 1);
    }
    if (const List* l = v.as<List>()) return int64_t((*l)->items.size());
    if (const Dict* d = v.as<Dict>()) return int64_t((*d)->entries.size());
    fault("object of type '{}' has no len()", type_name(v));
  }

  Value first_or_last(const Value& v, bool last) {
    const Value empty{Undefined{fmt::format("no {} item, the sequence is empty", last ? "last" : "first")}};
    if (v.undefined()) return empty;
    if (const std::string* s = string_of(v)) {
      if (s->empty()) return empty;
      budget_.bytes(s->size());
      const std::vector<size_t> offsets = char_offsets(*s);
      const size_t i = last ? offsets.size() - 2 : 0;
      return string_value(s->substr(offsets[i], offsets[i + 1] - offsets[i]), budget_);
    }
    if (const List* l = v.as<List>())
      return (*l)->items.empty() ? empty : last ? (*l)->items.back() : (*l)->items.front();
    if (const Dict* d = v.as<Dict>()) {
      const Entries& entries = (*d)->entries;
      return entries.empty() ? empty
                             : string_value(last ? entries.back().first : entries.front().first, budget_);
    }
    fault("'{}' object is not iterable", type_name(v));
  }

  Value join(const Value& v, const Args& args) {
    const std::vector<Value> p = bind(args, "join", {"d", "attribute"});
    if (!p[1].undefined()) fault("join's attribute argument is not supported");
    const std::string separator = to_str(p[0], budget_);
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v, budget_)) {
      if (!first) out += separator;
      first = false;
      out += to_str(item, budget_);
      check_length(out);
    }
    return string_value(std::move(out), budget_);
  }

  // Hugging Face's tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False): only
  // indent may be given.
  Value tojson(const Value& v, const Args& args) {
    const std::vector<Value> p = bind(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
    if (truthy(p[0]) || !absent(p[2]) || truthy(p[3])) fault("tojson() supports only its indent argument");
    std::optional<int64_t> indent;
    if (!absent(p[1])) indent = int_arg(p[1], "tojson");
    if (indent && *indent > int64_t(kMaxStringSize)) too_long();
    std::string out;
    JsonWriter(indent, out, budget_).write(v, 0);
    return string_value(std::move(out), budget_);
  }
};

Value messages_value(const std::vector<ChatMessage>& messages) {
  std::vector<Value> items;
  for (const ChatMessage& m : messages) {
    Entries entries = {{"role", Value{std::make_shared<const std::string>(m.role)}},
                       {"content", Value{std::make_shared<const std::string>(m.content)}}};
    items.push_back(Value{std::make_shared<const DictData>(DictData{std::move(entries), 1})});
  }
  return Value{std::make_shared<const ListData>(ListData{std::move(items), false, 2})};
}

// tokenizer_config.json's "chat_template": one template, or a list of named ones of which "default" is used.
std::string config_template(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) fail("chat_template is {}, not a string or a list", value.type_name());
  for (const nlohmann::json& entry : value) {
    if (!entry.is_object()) fail("chat_template lists {}, not an object", entry.type_name());
    const auto name = entry.find("name");
    if (name == entry.end() || *name != "default") continue;
    const auto source = entry.find("template");
    if (source == entry.end() || !source->is_string())
      fail("chat_template 'default' has no string \"template\"");
    return source->get<std::string>();
  }
  fail("chat_template lists no template named 'default'");
}

}  // namespace

struct ChatTemplate::Program {
  Body body;
};

ChatTemplate ChatTemplate::parse(const std::string& source) {
  auto program = std::make_shared<Program>();
  program->body = Parser(Lexer(source).run()).parse_template();
  return ChatTemplate(std::move(program));
}

const ChatTemplate& ChatTemplate::fallback() {
  static const ChatTemplate t = parse(
      "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}\n"
      "{%- if add_generation_prompt %}{{ 'assistant:' }}{% endif %}");
  return t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token) const {
  Entries globals = {{"messages", messages_value(messages)},
                     {"add_generation_prompt", Value{add_generation_prompt}},
                     {"bos_token", Value{std::make_shared<const std::string>(bos_token)}},
                     {"eos_token", Value{std::make_shared<const std::string>(eos_token)}},
                     {"tools", Value{None{}}},
                     {"documents", Value{None{}}}};
  return Renderer(std::move(globals)).run(program_->body);
}

std::optional<ChatTemplate> load_chat_template(const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string jinja = (fs::path(model_dir) / "chat_template.jinja").string();
  if (fs::exists(jinja, ec)) {
    const std::string source = io::read_file(jinja);
    return with_context(jinja, [&] { return ChatTemplate::parse(source); });
  }
  const std::string config = (fs::path(model_dir) / "tokenizer_config.json").string();
  if (!fs::exists(config, ec)) return std::nullopt;
  const std::string text = io::read_file(config);
  return with_context(config, [&]() -> std::optional<ChatTemplate> {
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail("malformed JSON: {}", e.what());
    }
    if (!json.is_object()) fail("not a JSON object");
    const auto it = json.find("chat_template");
    if (it == json.end() || it->is_null()) return std::nullopt;
    return ChatTemplate::parse(config_template(*it));
  });
}

}  // namespace tfm::serve
