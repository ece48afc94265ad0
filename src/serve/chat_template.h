// Chat templates: OpenAI-style chat messages rendered into one prompt string the way Hugging Face's
// tokenizer.apply_chat_template(messages, add_generation_prompt=..., tokenize=False) does, by a small
// interpreter for the subset of Jinja2 that the templates on the Hub use.
//
// The environment is Hugging Face's: trim_blocks and lstrip_blocks on, keep_trailing_newline off, no
// autoescaping, the default Undefined. A template sees these variables: messages (a list of
// {"role", "content"} dicts), add_generation_prompt, bos_token, eos_token, and tools and documents (both
// none, as apply_chat_template passes them without tools).
//
// Supported:
//  - Text, {{ expr }}, {# comments #}; whitespace control: "-" strips all whitespace on that side of the tag
//    ({%- -%} {{- -}} {#- -#}), "+" turns lstrip_blocks ({%+) or trim_blocks (+%}) off for one tag.
//    "\r\n" and "\r" become "\n", and one trailing newline of the template is dropped.
//  - {% if %} / {% elif %} / {% else %} / {% endif %}.
//  - {% for x in expr %} ... {% endfor %}, also "for a, b in" (unpacking) and "for x in expr if cond";
//    inside, loop.index, loop.index0, loop.revindex, loop.revindex0, loop.first, loop.last, loop.length. Each
//    iteration has a scope of its own, as in Jinja: a {% set %} inside a loop is gone at the next
//    iteration and after the loop (namespace objects carry values out).
//  - {% set name = expr %} and {% set ns.attr = expr %} on a namespace(...) object.
//  - Literals: strings ('..' or "..", Python escapes; adjacent strings join), integers, true / false /
//    none (also True / False / None), lists [a, b].
//  - Operators, by Jinja's precedence: "a if c else b"; or, and (returning an operand, as Python does);
//    not; == != < > <= >= in, not in (chainable); + -; ~ (string concatenation); * // %; unary - +; then
//    postfix .attr, [index], [start:stop:step], calls (f(a, key=b)), filters (| name, | name(args)) and
//    tests (is name, is not name). Integers are 64-bit (an overflow is an error).
//  - Filters: trim, upper, lower, length / count, tojson (Python's json.dumps with ensure_ascii=False; its
//    indent argument), default / d (with its boolean argument), string, first, last, join, replace, list,
//    items.
//  - Tests: defined, undefined, none, string, number, integer, boolean, true, false, mapping, sequence,
//    iterable.
//  - Methods: on strings strip / lstrip / rstrip (optional characters), upper, lower, startswith, endswith,
//    split (optional separator), replace (optional count); on dicts items, keys, values, get.
//  - Functions: raise_exception(message) (rendering fails with a tfm::Error whose message is exactly
//    `message`), namespace(key=value, ...), range([start,] stop[, step]) (at most 100,000 items).
//  - Python semantics for str() of values ("True", "None", "['a', 1]"), indexing (negative indices,
//    slices, out of range is undefined), truthiness, equality, ordering and floor division / modulo;
//    strings are UTF-8 and are indexed, sliced and measured in code points; upper / lower use ICU's full
//    case mapping and strip Python's whitespace set.
//  - Undefined values, as Jinja's default Undefined: they print as "", are false, iterate as empty and pass
//    through filters as "" (but tojson, which fails on them as Jinja's does); arithmetic, ordering,
//    attribute access or calls on them fail ("'x' is undefined"). Filter, test and method names are looked
//    up when used, so a template that names one outside this list renders as long as that branch is not
//    taken.
// Not supported (a parse error, or a render error when reached): floats and "/", "**", dict and tuple
// literals, macros, call / filter / raw / with / include / extends / block tags, {% set %} blocks,
// break / continue, for-else, recursive loops, tests with arguments, loop.cycle / previtem / nextitem,
// str.format and "%" formatting, and the other Jinja filters (map, select, selectattr, reject, ...).
//
// Limits, so that any template text fails cleanly instead of exhausting the stack or memory: syntax nested
// more than 64 deep (parentheses, blocks), an expression tree deeper than 256, values nested more than 64
// deep, lists longer than 1,048,576 items, strings or output longer than 32 MiB, and rendering that needs
// more than 2^23 steps (a step is an expression, a statement, a list item or 64 bytes of string built).
//
// Errors are tfm::Error: "chat template: line 3, column 7: unexpected 'endfor'" for parse and render errors,
// and the bare message for raise_exception. A parsed ChatTemplate is immutable: render() may run on several
// threads at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tfm::serve {

struct ChatMessage {
  std::string role, content;
};

class ChatTemplate {
 public:
  // Parses a Jinja template (the text of tokenizer_config.json's "chat_template"). Errors name the line
  // and column.
  static ChatTemplate parse(const std::string& source);

  // The template for a model that has none (parsed once). Each message as "<role>: <content>\n", then
  // "assistant:" when add_generation_prompt, and nothing else (no bos_token, no eos_token):
  //   {% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}
  //   {%- if add_generation_prompt %}{{ 'assistant:' }}{% endif %}
  static const ChatTemplate& fallback();

  // The prompt for `messages`. bos_token and eos_token are the tokenizer's special tokens as text ("<s>");
  // a template usually writes bos_token itself, so the prompt is to be encoded without adding another.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token) const;

  struct Program;  // the parsed template (chat_template.cpp)

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

// The chat template of the model folder `model_dir`, as Hugging Face's from_pretrained finds it: the file
// chat_template.jinja when there is one (it overrides the config's), else tokenizer_config.json's
// "chat_template": a string, or a list of {"name", "template"} objects of which the one named "default" is
// taken. std::nullopt when neither has a template. Errors (unreadable or malformed JSON, a list without a
// "default", a template that does not parse) name the file.
std::optional<ChatTemplate> load_chat_template(const std::string& model_dir);

}  // namespace tfm::serve
