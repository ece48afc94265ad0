// The request parsers of tfm serve (serve/api.h): what they accept, and the 400 each bad field gets, named
// by its param, with OpenAI's error shape. Inputs the fuzz target (fuzz/fuzz_serve_request.cpp) found
// are kept here.
#include <gtest/gtest.h>

#include "serve/api.h"

namespace tfm::serve {
namespace {

// The ApiError a parse of `body` throws.
template <typename Parse>
ApiError error_of(Parse parse, const std::string& body) {
  try {
    parse(parse_body(body));
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "");
}

TEST(ServeApi, CompletionFieldsAndDefaults) {
  const CompletionRequest r = parse_completion(parse_body(
      R"({"model":"m","prompt":["a",[1,2]],"max_tokens":5,"temperature":0,"stop":"x","n":2,"logprobs":3,"echo":true,)"
      R"("stream":true,"stream_options":{"include_usage":true},"seed":18446744073709551615,"ignore_eos":true})"));
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0].text, "a");
  EXPECT_TRUE(r.prompts[1].is_ids);
  EXPECT_EQ(r.prompts[1].ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r.params.max_tokens, 5);
  EXPECT_EQ(r.params.temperature, 0.0f);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.params.n, 2);
  EXPECT_EQ(r.params.logprobs, 3);
  EXPECT_TRUE(r.params.echo && r.params.stream && r.params.include_usage && r.params.ignore_eos);
  EXPECT_EQ(r.params.seed, 18446744073709551615ull);
  const CompletionRequest d = parse_completion(parse_body(R"({"prompt":[5,6]})"));
  EXPECT_FALSE(d.params.max_tokens);
  EXPECT_EQ(d.params.temperature, 1.0f);
  EXPECT_EQ(d.params.top_p, 1.0f);
  EXPECT_EQ(d.params.n, 1);
  EXPECT_TRUE(d.prompts[0].is_ids);
}

TEST(ServeApi, BadFieldsNameTheirParam) {
  struct Case {
    std::string body, param, code;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"prompt":"a","max_tokens":"ten"})", "max_tokens", "invalid_type"},
           {R"({"prompt":"a","max_tokens":0})", "max_tokens", "invalid_value"},
           {R"({"prompt":"a","max_tokens":1e300})", "max_tokens", "invalid_type"},
           {R"({"prompt":"a","max_tokens":99999999999999999999})", "max_tokens", "invalid_type"},
           {R"({"prompt":"a","temperature":-1})", "temperature", "invalid_value"},
           {R"({"prompt":"a","top_p":0})", "top_p", "invalid_value"},
           {R"({"prompt":"a","n":17})", "n", "invalid_value"},
           {R"({"prompt":"a","stop":["a","b","c","d","e"]})", "stop", "invalid_value"},
           {R"({"prompt":"a","stop":[""]})", "stop", "invalid_value"},
           {R"({"prompt":"a","stop":3})", "stop", "invalid_type"},
           {R"({"prompt":"a","seed":-1.5})", "seed", "invalid_type"},
           {R"({"prompt":[]})", "prompt", "invalid_value"},
           {R"({"prompt":[1,-2]})", "prompt", "invalid_value"},
           {R"({"prompt":[1,"a"]})", "prompt", "invalid_type"},
           {R"({"prompt":{}})", "prompt", "invalid_type"},
           {R"({"max_tokens":3})", "prompt", "invalid_value"},
           {R"({"prompt":"a","stream_options":true})", "stream_options", "invalid_type"},
       }) {
    const ApiError e = error_of(parse_completion, c.body);
    EXPECT_EQ(e.status(), 400) << c.body;
    const json body = e.body();
    EXPECT_EQ(body["error"]["param"], c.param) << c.body;
    EXPECT_EQ(body["error"]["code"], c.code) << c.body;
    EXPECT_EQ(body["error"]["type"], "invalid_request_error");
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  }
  EXPECT_EQ(error_of(parse_chat, R"({"messages":[{"role":"user","content":5}]})").body()["error"]["param"],
            "messages[0].content");
  EXPECT_EQ(error_of(parse_chat, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})")
                .body()["error"]["param"],
            "messages[0].content");
  EXPECT_EQ(error_of(parse_embedding, R"({"input":"a","encoding_format":"int8"})").body()["error"]["param"],
            "encoding_format");
  EXPECT_EQ(error_of(parse_translate, R"({"q":"a","target":"es","format":"html"})").body()["error"]["param"],
            "format");
  EXPECT_EQ(error_of(parse_detokenize, R"({"tokens":[1.5]})").body()["error"]["param"], "tokens");
}

// parse_body: malformed JSON (also numbers beyond double's range, which nlohmann reports as out_of_range,
// found by the fuzzer), invalid UTF-8 with its offset, a body that is not an object.
TEST(ServeApi, MalformedBodiesAre400s) {
  for (const std::string body :
       {"{", "{\"a\":}", "67676666.76e7666", "{\"a\":1e99999}", "[1,2]", "\"text\"", ""}) {
    try {
      parse_body(body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << body;
      EXPECT_EQ(e.body()["error"]["code"], "invalid_json") << body;
    }
  }
  try {
    parse_body("{\"prompt\":\"ab\xC3\x28\"}");
    ADD_FAILURE() << "accepted invalid UTF-8";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.body()["error"]["code"], "invalid_utf8");
    EXPECT_NE(std::string(e.what()).find("byte offset 13"), std::string::npos) << e.what();
  }
}

TEST(ServeApi, DumpReplacesInvalidUtf8) { EXPECT_EQ(dump(json("a\xC3")), "\"a\xEF\xBF\xBD\""); }

}  // namespace
}  // namespace tfm::serve
