#include "serve/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "test_support.h"

namespace tfm::serve {
namespace {

using Messages = std::vector<ChatMessage>;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// A template as tokenizer_config.json spells it: the JSON string literal, quotes and escapes included.
ChatTemplate from_config(const std::string& json_literal) {
  return ChatTemplate::parse(nlohmann::json::parse(json_literal).get<std::string>());
}

std::string render(const std::string& source, const Messages& messages = {},
                   bool add_generation_prompt = false) {
  return ChatTemplate::parse(source).render(messages, add_generation_prompt, "<s>", "</s>");
}

std::string render_error(const std::string& source, const Messages& messages = {}) {
  return test::error_of([&] { render(source, messages); });
}

// The conversation of text-generation-inference's chat template tests (router/src/infer/chat_template.rs),
// whose expected prompts were produced by transformers' apply_chat_template(..., add_generation_prompt=True).
const Messages kSystemConversation = {{"system", "You are a helpful assistant"},
                                      {"user", "Hello"},
                                      {"assistant", "Hi there"},
                                      {"user", "Who are you"},
                                      {"assistant", "   I am an assistant   "},
                                      {"user", "Another question"}};
const Messages kConversation(kSystemConversation.begin() + 1, kSystemConversation.end());

// teknium/OpenHermes-2.5-Mistral-7B.
const char* const kChatML =
    R"json("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")json";

TEST(ChatTemplate, ChatML) {
  const ChatTemplate t = from_config(kChatML);
  const std::string turns =
      "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
      "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
      "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother "
      "question<|im_end|>\n";
  EXPECT_EQ(t.render(kSystemConversation, true, "<s>", "</s>"), turns + "<|im_start|>assistant\n");
  EXPECT_EQ(t.render(kSystemConversation, false, "<s>", "</s>"), turns);
}

// HuggingFaceH4/zephyr-7b-beta; TinyLlama/TinyLlama-1.1B-Chat-v1.0 ships the same template. trim_blocks
// removes the newline after each {% %} tag; the ones after {{ }} stay.
const char* const kZephyr =
    R"json("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")json";

TEST(ChatTemplate, ZephyrAndTinyLlama) {
  const ChatTemplate t = from_config(kZephyr);
  const Messages messages = {
      {"system", "You are a friendly chatbot who always responds in the style of a pirate"},
      {"user", "How many helicopters can a human eat in one sitting?"}};
  const std::string turns =
      "<|system|>\nYou are a friendly chatbot who always responds in the style of a pirate</s>\n"
      "<|user|>\nHow many helicopters can a human eat in one sitting?</s>\n";
  EXPECT_EQ(t.render(messages, true, "<s>", "</s>"), turns + "<|assistant|>\n");
  EXPECT_EQ(t.render(messages, false, "<s>", "</s>"), turns);
  const Messages chat = {{"user", "Hi"}, {"assistant", "Ahoy"}};
  EXPECT_EQ(t.render(chat, true, "<s>", "</s>"),
            "<|user|>\nHi</s>\n<|assistant|>\nAhoy</s>\n<|assistant|>\n");
}

// meta-llama/Llama-2-13b-chat-hf: the system message goes into the first user turn (loop.index0 == 0).
const char* const kLlama2 =
    R"json("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")json";

TEST(ChatTemplate, Llama2) {
  const ChatTemplate t = from_config(kLlama2);
  EXPECT_EQ(t.render(kSystemConversation, true, "<s>", "</s>"),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there "
            "</s><s>[INST] Who are "
            "you [/INST] I am an assistant </s><s>[INST] Another question [/INST]");
  EXPECT_EQ(t.render({{"user", " Hi "}}, false, "<s>", "</s>"), "<s>[INST] Hi [/INST]");
  const std::string error = test::error_of([&] {
    t.render({{"user", "a"}, {"user", "b"}}, true, "<s>", "</s>");
  });
  EXPECT_EQ(error, "Conversation roles must alternate user/assistant/user/assistant/...");
}

// mistralai/Mistral-7B-Instruct-v0.1 (the revision text-generation-inference tests).
const char* const kMistral =
    R"json("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")json";

TEST(ChatTemplate, Mistral) {
  const ChatTemplate t = from_config(kMistral);
  const std::string prompt =
      "<s>[INST] Hello [/INST]Hi there</s> [INST] Who are you [/INST]   I am an assistant   </s> [INST] "
      "Another "
      "question [/INST]";
  EXPECT_EQ(t.render(kConversation, true, "<s>", "</s>"), prompt);
  EXPECT_EQ(t.render(kConversation, false, "<s>", "</s>"), prompt);
  EXPECT_EQ(test::error_of([&] { t.render(kSystemConversation, true, "<s>", "</s>"); }),
            "Conversation roles must alternate user/assistant/user/assistant/...");
  EXPECT_EQ(test::error_of([&] {
              t.render({{"user", "a"}, {"tool", "b"}}, true, "<s>", "</s>");
            }),
            "Only user and assistant roles are supported!");
}

// google/gemma-7b-it: "message['content'] | trim" filters the content alone, before the + operators.
const char* const kGemma =
    R"json("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")json";

TEST(ChatTemplate, Gemma) {
  const ChatTemplate t = from_config(kGemma);
  EXPECT_EQ(
      t.render(kConversation, true, "<bos>", "<eos>"),
      "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
      "<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n"
      "<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(test::error_of([&] { t.render(kSystemConversation, true, "<bos>", "<eos>"); }),
            "System role not supported");
}

TEST(ChatTemplate, Fallback) {
  const Messages messages = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_EQ(ChatTemplate::fallback().render(messages, true, "<s>", "</s>"),
            "system: Be brief.\nuser: Hi\nassistant:");
  EXPECT_EQ(ChatTemplate::fallback().render(messages, false, "<s>", "</s>"), "system: Be brief.\nuser: Hi\n");
}

TEST(ChatTemplate, WhitespaceControl) {
  EXPECT_EQ(render("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(render("a\n  {%- if true -%}\n  b\n{%- endif %}"), "ab");
  EXPECT_EQ(render("a {#- comment -#} b"), "ab");
  EXPECT_EQ(render("{{ 'x' }}\ny"), "x\ny");  // trim_blocks is for block tags only
}

TEST(ChatTemplate, TrimAndLstripBlocks) {
  EXPECT_EQ(render("{% if true %}\nyes\n{% endif %}\nafter"), "yes\nafter");
  EXPECT_EQ(render("line\n    {% if true %}x{% endif %}"), "line\nx");
  EXPECT_EQ(render("{% if true %}\n\t{% if true %}x{% endif %}\n{% endif %}"), "x");
  EXPECT_EQ(render("a {% if true %}x{% endif %}"), "a x");  // not at the start of a line
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");                  // lstrip_blocks leaves {{ }} alone
  EXPECT_EQ(render("a {# c #}\nb"), "a b");
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
  // "+" turns lstrip_blocks ({%+) and trim_blocks (+%}) off for one tag.
  EXPECT_EQ(render("a\n  {%+ if true %}x{% endif +%}\nb"), "a\n  x\nb");
}

TEST(ChatTemplate, Newlines) {
  EXPECT_EQ(render("x\n"), "x");  // one trailing newline is dropped
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(render("{% if true %}\r\nx{% endif %}"), "x");
}

TEST(ChatTemplate, Expressions) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 + 3 * 4 - 1 }} {{ -2 * -3 }}"),
            "3 -4 2 -2 13 6");
  EXPECT_EQ(
      render("{{ true }} {{ none }} {{ [1, 'a', none, True, [false]] }} {{ 'x' ~ 1 ~ none }} {{ 1 + true }}"),
      "True None [1, 'a', None, True, [False]] x1None 2");
  EXPECT_EQ(render(R"({{ ["it's", 'a\nb', "q\"", 'x' 'y'] }})"), R"(["it's", 'a\nb', 'q"', 'xy'])");
  EXPECT_EQ(render("{{ 1 if false }}|{{ 'a' if 1 < 2 < 3 else 'b' }}|{{ 'a' if 3 < 2 < 4 else 'b' }}"),
            "|a|b");
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not 0 }} {{ none or [] }}"), "x y True []");
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 2 not in [1, 3] }} {{ 'role' in messages[0] }} {{ [1] == [1] }}",
                   {{"user", "hi"}}),
            "True True True True");
  EXPECT_EQ(render("{{ 'b' > 'a' }} {{ [1, 2] < [1, 3] }} {{ 1 == true }} {{ '1' == 1 }}"),
            "True True True False");
  EXPECT_EQ(render(R"({{ '\x41\u00e9\U0001F600\101\q' }})"),
            "A\xC3\xA9\xF0\x9F\x98\x80"
            "A\\q");
}

TEST(ChatTemplate, SubstringSearch) {
  EXPECT_EQ(
      render("{{ 'aab' in 'aaab' }} {{ 'abab' in 'abaabab' }} {{ 'abac' in 'ababac' }} {{ 'abc' in 'abab' }} "
             "{{ '' in 'a' }}"),
      "True True True False True");
  EXPECT_EQ(
      render(
          "{{ 'a--b----c'.split('--') }} {{ 'aaa'.replace('aa', 'b') }} {{ 'abcabc' | replace('bc', '') }}"),
      "['a', 'b', '', 'c'] ba aa");
  // Work on a long argument counts against the step limit, so repeating it cannot take hours.
  EXPECT_TRUE(
      contains(render_error("{% set c = 'x' * 30000000 %}{% for i in range(100000) %}{{ 'a'.strip(c) }}"
                            "{% endfor %}"),
               "steps"));
}

TEST(ChatTemplate, IndexingAndSlicing) {
  EXPECT_EQ(render("{{ 'abc'[-1] }}{{ 'h\xC3\xA9llo'[1] }}{{ 'h\xC3\xA9llo'[1:3] }}{{ 'abc'[::-1] }}"),
            "c\xC3\xA9\xC3\xA9lcba");
  EXPECT_EQ(render("{{ [1, 2, 3][::-1] }} {{ [1, 2, 3][1:] }} {{ [1, 2, 3][-2:-1] }} {{ [1, 2, 3][5:] }}"),
            "[3, 2, 1] [2, 3] [2] []");
  EXPECT_EQ(render("{{ [1, 2][5] is defined }} {{ messages[-1]['content'] }} {{ messages[0].role }}",
                   {{"user", "a"}, {"assistant", "b"}}),
            "False b user");
  EXPECT_EQ(render("{{ 'h\xC3\xA9llo' | length }} {{ messages | length }} {{ undefined_thing | length }}",
                   {{"user", "a"}}),
            "5 1 0");
}

TEST(ChatTemplate, Filters) {
  EXPECT_EQ(render("{{ '  x  ' | trim }}|{{ 'aBc' | upper }}|{{ '\xC3\x84"
                   "B' | lower }}|{{ '\xC3\x9F' | upper }}"),
            "x|ABC|\xC3\xA4"
            "b|SS");
  EXPECT_EQ(
      render("{{ [1, 'a'] | join(', ') }}|{{ nothing | default('d') }}|{{ '' | default('d', true) }}|"
             "{{ '' | d('d') }}|{{ 'a-b-c' | replace('-', '+', 1) }}|{{ 'ab' | list }}|{{ 5 | string }}"),
      "1, a|d|d||a+b-c|['a', 'b']|5");
  EXPECT_EQ(render("{{ [3, 4] | first }}{{ [3, 4] | last }}{{ 'xyz' | first }}{{ [] | first is defined }}"),
            "34xFalse");
  EXPECT_EQ(render("{% for k, v in messages[0] | items %}{{ k }}={{ v }};{% endfor %}", {{"user", "hi"}}),
            "role=user;content=hi;");
  EXPECT_EQ(render("{{ nothing | trim }}|{{ nothing | upper }}|{{ nothing | join }}|{{ nothing | list }}"),
            "|||[]");
}

TEST(ChatTemplate, ToJson) {
  const Messages m = {{"user", "h\xC3\xA9llo \"q\"\n"}};
  EXPECT_EQ(render("{{ messages | tojson }}", m), R"([{"role": "user", "content": "héllo \"q\"\n"}])");
  EXPECT_EQ(render("{{ messages | tojson(indent=2) }}", m),
            "[\n  {\n    \"role\": \"user\",\n    \"content\": \"h\xC3\xA9llo \\\"q\\\"\\n\"\n  }\n]");
  EXPECT_EQ(render("{{ [1, none, true, 'a'] | tojson }} {{ [] | tojson(indent=2) }}"),
            "[1, null, true, \"a\"] []");
  EXPECT_TRUE(
      contains(render_error("{{ nothing | tojson }}"), "Object of type Undefined is not JSON serializable"));
}

TEST(ChatTemplate, Methods) {
  EXPECT_EQ(
      render("{{ '  x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a,b'.split(',') }}|"
             "{{ ' a  b '.split() }}|{{ 'Hi'.startswith('H') }}|{{ 'Hi'.endswith('x') }}|"
             "{{ 'abc'.replace('', '-') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'Ab'.upper() }}{{ "
             "'Ab'.lower() }}"),
      "x|a|axx|['a', 'b']|['a', 'b']|True|False|-a-b-c-|bba|ABab");
  const Messages m = {{"user", "hi"}};
  EXPECT_EQ(
      render("{{ messages[0].get('missing', 'd') }} {{ messages[0].get('role') }} {{ messages[0].get('x') }}",
             m),
      "d user None");
  EXPECT_EQ(render("{{ messages[0].items() | list }} {{ messages[0].keys() }} {{ messages[0].values() }}", m),
            "[('role', 'user'), ('content', 'hi')] ['role', 'content'] ['user', 'hi']");
  EXPECT_TRUE(contains(render_error("{{ 'a'.title() }}"), "str.title() is not supported"));
}

TEST(ChatTemplate, Tests) {
  EXPECT_EQ(
      render(
          "{{ x is defined }} {{ none is none }} {{ 1 is number }} {{ true is integer }} {{ 'a' is string }} "
          "{{ messages[0] is mapping }} {{ 1 is not string }} {{ x is undefined }} {{ true is boolean }} "
          "{{ messages is sequence }} {{ 1 is iterable }} {{ false is false }}",
          {{"user", "a"}}),
      "False True True False True True True True True True False True");
}

TEST(ChatTemplate, LoopVariables) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                   "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  const Messages m = {{"system", "s"}, {"user", "u"}, {"assistant", "a"}};
  EXPECT_EQ(
      render("{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.role }} "
             "{% endfor %}",
             m),
      "1/2:user 2/2:assistant ");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_EQ(
      render("{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{% endfor %}{{ loop.index }}"
             "{% endfor %}"),
      "121122");
  EXPECT_EQ(
      render(
          "{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}"
          "{% for c in 'ab' %}{{ c }}{% endfor %}{% for x in nothing %}x{% endfor %}"),
      "147321ab");
}

TEST(ChatTemplate, Scoping) {
  // A set inside a loop is local to its iteration; the outer value is read until then.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in range(3) %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"),
            "1231");
  EXPECT_EQ(render("{% for i in range(3) %}{% set last = i %}{% endfor %}{{ last is defined }}"), "False");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");  // if blocks have no scope
  // A namespace carries values out of the loop.
  const Messages m = {{"system", "s"}, {"user", "u"}, {"assistant", "a"}, {"user", "v"}};
  EXPECT_EQ(
      render("{% set ns = namespace(found=false, n=0, last='') %}{% for m in messages %}"
             "{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.n = ns.n + 1 %}"
             "{% set ns.last = m.content %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns.last }}",
             m),
      "True 2 v");
  EXPECT_TRUE(contains(render_error("{% set x = 1 %}{% set x.a = 2 %}"), "non-namespace"));
}

TEST(ChatTemplate, RaiseException) {
  EXPECT_EQ(render_error("a{{ raise_exception('Only user and assistant roles are supported!') }}"),
            "Only user and assistant roles are supported!");
  EXPECT_EQ(render("{% if false %}{{ raise_exception('no') }}{% endif %}ok"), "ok");
}

TEST(ChatTemplate, RenderErrorsNameThePosition) {
  EXPECT_EQ(render_error("x\n  {{ foo + 1 }}"), "chat template: line 2, column 10: 'foo' is undefined");
  EXPECT_TRUE(contains(render_error("{{ foo.bar }}"), "'foo' is undefined"));
  EXPECT_TRUE(
      contains(render_error("{{ messages[0].x.y }}", {{"user", "a"}}), "'dict object' has no attribute 'x'"));
  EXPECT_TRUE(contains(render_error("{{ 9223372036854775807 + 1 }}"), "integer overflow"));
  EXPECT_TRUE(contains(render_error("{{ 1 // 0 }}"), "division or modulo by zero"));
  EXPECT_TRUE(contains(render_error("{{ 'a' + 1 }}"), "unsupported operand type(s) for +: 'str' and 'int'"));
  EXPECT_TRUE(
      contains(render_error("{{ 1 < 'a' }}"), "'<' not supported between instances of 'int' and 'str'"));
  EXPECT_TRUE(contains(render_error("{{ x | map('a') }}"), "unsupported filter 'map'"));
  EXPECT_TRUE(contains(render_error("{{ x is odd }}"), "unknown test 'odd'"));
  EXPECT_TRUE(contains(render_error("{{ strftime_now('%d') }}"), "'strftime_now' is undefined"));
  EXPECT_TRUE(contains(render_error("{% for a, b in [[1]] %}{% endfor %}"), "cannot unpack 1 values into 2"));
  // A filter or test outside the subset is fine in a branch that is not taken.
  EXPECT_EQ(render("{% if false %}{{ x | map('a') }}{{ x is odd }}{% endif %}ok"), "ok");
}

std::string parse_error(const std::string& source) {
  return test::error_of([&] { ChatTemplate::parse(source); });
}

TEST(ChatTemplate, ParseErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("a\n{% endfor %}"), "chat template: line 2, column 4: unexpected 'endfor'");
  EXPECT_EQ(parse_error("{% for x in y %}"),
            "chat template: line 1, column 17: unexpected end of template: the 'for' at line 1, column 4 is "
            "not closed");
  EXPECT_EQ(parse_error("{{ 1 + }}"), "chat template: line 1, column 8: unexpected '}}'");
  EXPECT_EQ(parse_error("ab\n {{ 'abc }}"), "chat template: line 2, column 5: unterminated string");
  EXPECT_EQ(parse_error("{% if x %}{{ x "),
            "chat template: line 1, column 11: the tag is not closed (no '}}')");
  EXPECT_EQ(parse_error("{# x"), "chat template: line 1, column 1: the comment is not closed (no '#}')");
  EXPECT_TRUE(contains(parse_error("{% macro m() %}{% endmacro %}"), "unsupported tag 'macro'"));
  EXPECT_TRUE(contains(parse_error("{{ 1.5 }}"), "floating-point numbers are not supported"));
  EXPECT_TRUE(contains(parse_error("{{ {'a': 1} }}"), "dict literals are not supported"));
  EXPECT_TRUE(contains(parse_error("{{ (1, 2) }}"), "tuples are not supported"));
  EXPECT_TRUE(contains(parse_error("{{ 1 / 2 }}"), "'/'"));
  EXPECT_TRUE(contains(parse_error("{{ x is divisibleby(3) }}"), "tests with arguments are not supported"));
  EXPECT_TRUE(contains(parse_error("{% for x in y %}{% else %}{% endfor %}"), "{% else %} in a for loop"));
  EXPECT_TRUE(contains(parse_error("{% set x %}a{% endset %}"), "{% set %} blocks are not supported"));
  EXPECT_TRUE(contains(parse_error("{{ x @ y }}"), "unexpected character '@'"));
}

TEST(ChatTemplate, NestingLimits) {
  EXPECT_TRUE(contains(parse_error("{{ " + std::string(100, '(') + "1" + std::string(100, ')') + " }}"),
                       "syntax nested more than 64 deep"));
  std::string ifs;
  for (int i = 0; i < 100; ++i) ifs += "{% if true %}";
  EXPECT_TRUE(contains(parse_error(ifs), "syntax nested more than 64 deep"));
  EXPECT_TRUE(contains(parse_error("{{ " + std::string(100000, '-') + "1 }}"),
                       "expression nested more than 256 deep"));
  std::string sum = "{{ 1";
  for (int i = 0; i < 300; ++i) sum += " + 1";
  EXPECT_TRUE(contains(parse_error(sum + " }}"), "expression nested more than 256 deep"));
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_TRUE(contains(parse_error(nots + "1 }}"), "expression nested more than 256 deep"));
  EXPECT_EQ(render("{{ " + std::string(60, '(') + "1" + std::string(60, ')') + " }}"), "1");
  EXPECT_TRUE(contains(
      render_error(
          "{% set ns = namespace(v=[]) %}{% for i in range(100) %}{% set ns.v = [ns.v] %}{% endfor %}"),
      "values nested more than 64 deep"));
}

TEST(ChatTemplate, SizeAndStepLimits) {
  EXPECT_TRUE(contains(
      render_error("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
      "rendering takes more than 8388608 steps"));
  EXPECT_TRUE(contains(render_error("{{ 'x' * 40000000 }}"), "a string longer than 33554432 bytes"));
  EXPECT_TRUE(
      contains(render_error("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}"),
               "the output is longer than 33554432 bytes"));
  EXPECT_TRUE(contains(render_error("{{ [1] * 2000000 }}"), "a list longer than 1048576 items"));
  EXPECT_TRUE(contains(render_error("{{ range(100001) }}"), "range() of more than 100000 items"));
  EXPECT_TRUE(contains(
      render_error("{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}"
                   "{% endfor %}"),
      "a string longer than"));
  EXPECT_EQ(render("{{ range(3) }} {{ 'ab' * 2 }} {{ [0] * 3 }}"), "[0, 1, 2] abab [0, 0, 0]");
}

TEST(ChatTemplate, RendersOnSeveralThreads) {
  const ChatTemplate t = from_config(kLlama2);
  const std::string want = t.render(kSystemConversation, true, "<s>", "</s>");
  std::vector<std::string> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = t.render(kSystemConversation, true, "<s>", "</s>"); });
  for (std::thread& thread : threads) thread.join();
  for (const std::string& g : got) EXPECT_EQ(g, want);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string rendered(const std::optional<ChatTemplate>& t) {
  return t ? t->render({{"user", "hi"}}, true, "<s>", "</s>") : "(none)";
}

TEST(ChatTemplate, LoadFromTokenizerConfig) {
  const std::string dir = test::temp_dir("chat_template");
  EXPECT_FALSE(load_chat_template(dir).has_value());  // no files
  write(dir + "/tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(load_chat_template(dir).has_value());  // no template
  write(dir + "/tokenizer_config.json", R"({"chat_template": null})");
  EXPECT_FALSE(load_chat_template(dir).has_value());
  write(dir + "/tokenizer_config.json", std::string(R"({"chat_template": )") + kChatML + "}");
  EXPECT_EQ(rendered(load_chat_template(dir)), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  write(dir + "/tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "T"},)"
                                        R"( {"name": "default", "template": "D{{ bos_token }}"}]})");
  EXPECT_EQ(rendered(load_chat_template(dir)), "D<s>");
  write(dir + "/chat_template.jinja", "J{{ messages[0].content }}\n");
  EXPECT_EQ(rendered(load_chat_template(dir)), "Jhi");  // the .jinja file overrides the config
}

TEST(ChatTemplate, LoadErrorsNameTheFile) {
  const std::string dir = test::temp_dir("chat_template_errors");
  const std::string config = dir + "/tokenizer_config.json";
  write(config, R"({"chat_template": )");
  EXPECT_TRUE(contains(test::error_of([&] { load_chat_template(dir); }), config + ": malformed JSON"));
  write(config, R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
  EXPECT_TRUE(contains(test::error_of([&] { load_chat_template(dir); }),
                       config + ": chat_template lists no template named 'default'"));
  write(config, R"({"chat_template": 3})");
  EXPECT_TRUE(
      contains(test::error_of([&] { load_chat_template(dir); }), config + ": chat_template is number"));
  write(config, R"({"chat_template": "{% if %}"})");
  EXPECT_TRUE(contains(test::error_of([&] { load_chat_template(dir); }),
                       config + ": chat template: line 1, column 7: unexpected '%}'"));
  write(dir + "/chat_template.jinja", "{% endif %}");
  EXPECT_EQ(test::error_of([&] { load_chat_template(dir); }),
            dir + "/chat_template.jinja: chat template: line 1, column 4: unexpected 'endif'");
}

}  // namespace
}  // namespace tfm::serve
