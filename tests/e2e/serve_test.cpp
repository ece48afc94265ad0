// tfm serve as a user runs it: each test starts the server on a free loopback port, drives it over HTTP
// (cpp-httplib's client), and stops it with SIGTERM (exit 0). Outputs are checked against the CLI
// (tfm generate, tfm translate) and Hugging Face's references in shared/models; every bad request gets its
// status and OpenAI's error shape, and the server still answers /health after each. The official openai
// npm client drives the same server in tests/clients (ctest: serve_openai_client).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "server_process.h"
#include "test_support.h"

namespace tfm {
namespace {

using json = nlohmann::json;
using test::ServerProcess;

std::string models() { return test::shared_dir() + "/models"; }

json scores(const std::string& model) {
  std::ifstream in(models() + "/" + model + "/scores.json");
  return json::parse(in);
}

struct Reply {
  int status = 0;
  json body;
  std::string text;
  httplib::Headers headers;
};

Reply post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers = {},
           const std::string& type = "application/json") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120);
  auto r = client.Post(path, headers, body, type);
  if (!r) return {};
  Reply out{r->status, json(), r->body, r->headers};
  out.body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  return out;
}

Reply get(int port, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client client("127.0.0.1", port);
  auto r = client.Get(path, headers);
  if (!r) return {};
  return {r->status, json::parse(r->body, nullptr, false), r->body, r->headers};
}

bool healthy(int port) { return get(port, "/health").status == 200; }

// Greedy completions of lm-kjv's six reference prompts: the ids Hugging Face generated (scores.json) and
// the text tfm generate prints; with ids as the prompt too.
TEST(Serve, GreedyCompletionsEqualHuggingFaceAndTfmGenerate) {
  ServerProcess server("--model '" + models() + "/lm-kjv' --threads 2");
  EXPECT_NE(server.banner().find("model lm-kjv:"), std::string::npos) << server.banner();
  for (const json& g : scores("lm-kjv")["greedy"]) {
    const std::vector<int64_t> prompt = g["prompt_ids"], all = g["greedy_ids"];
    std::vector<int64_t> want(all.begin() + int64_t(prompt.size()), all.end());
    for (const json& p : {json(g["prompt"]), json(prompt)}) {
      const Reply r =
          post(server.port(), "/v1/completions",
               json{{"prompt", p}, {"max_tokens", 40}, {"temperature", 0}, {"return_tokens", true}}.dump());
      ASSERT_EQ(r.status, 200) << r.text;
      const json& choice = r.body["choices"][0];
      EXPECT_EQ(choice["tokens"].get<std::vector<int64_t>>(), want) << g["prompt"];
      EXPECT_EQ(r.body["usage"]["completion_tokens"], want.size());
      EXPECT_EQ(r.body["usage"]["prompt_tokens"], prompt.size());
      EXPECT_EQ(choice["finish_reason"], want.size() < 40 ? "stop" : "length");
      const test::CliResult cli =
          test::run_cli("generate --model '" + models() + "/lm-kjv' --prompt '" +
                        g["prompt"].get<std::string>() + "' --max-new-tokens 40 --greedy");
      ASSERT_EQ(cli.code, 0) << cli.err;
      EXPECT_EQ(g["prompt"].get<std::string>() + choice["text"].get<std::string>() + "\n", cli.out);
    }
  }
  EXPECT_EQ(server.stop(), 0);
}

// Seeded sampling: the same text twice, and tfm generate's with the same seed; several choices (n) differ
// from each other; a stop string cuts the text before it.
TEST(Serve, SeededSamplingEqualsTfmGenerateAndStopStringsCut) {
  ServerProcess server("--model '" + models() + "/lm-kjv'");
  const std::string prompt = "And God said";
  const json request = {
      {"prompt", prompt}, {"max_tokens", 30}, {"temperature", 0.8}, {"top_k", 40}, {"seed", 7}};
  const Reply a = post(server.port(), "/v1/completions", request.dump());
  const Reply b = post(server.port(), "/v1/completions", request.dump());
  ASSERT_EQ(a.status, 200) << a.text;
  EXPECT_EQ(a.body["choices"][0]["text"], b.body["choices"][0]["text"]);
  const test::CliResult cli = test::run_cli("generate --model '" + models() + "/lm-kjv' --prompt '" + prompt +
                                            "' --max-new-tokens 30 --temperature 0.8 --top-k 40 --seed 7");
  ASSERT_EQ(cli.code, 0) << cli.err;
  EXPECT_EQ(prompt + a.body["choices"][0]["text"].get<std::string>() + "\n", cli.out);

  json several = request;
  several["n"] = 3;
  const Reply n = post(server.port(), "/v1/completions", several.dump());
  ASSERT_EQ(n.status, 200) << n.text;
  ASSERT_EQ(n.body["choices"].size(), 3u);
  EXPECT_EQ(n.body["choices"][0]["text"], a.body["choices"][0]["text"]) << "choice 0 is row 0's draw";
  EXPECT_NE(n.body["choices"][1]["text"], n.body["choices"][2]["text"]);

  // Greedy text of the first reference prompt is "... of the year of Darius the king.": stop at " of".
  const json greedy = scores("lm-kjv")["greedy"][0];
  const std::string full =
      greedy["text"].get<std::string>().substr(greedy["prompt"].get<std::string>().size());
  const Reply s =
      post(server.port(), "/v1/completions",
           json{{"prompt", greedy["prompt"]}, {"max_tokens", 40}, {"temperature", 0}, {"stop", {"Darius"}}}
               .dump());
  ASSERT_EQ(s.status, 200) << s.text;
  EXPECT_EQ(s.body["choices"][0]["text"], full.substr(0, full.find("Darius")));
  EXPECT_EQ(s.body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(server.stop(), 0);
}

// The SSE stream of a completion: chunks in OpenAI's shape whose texts add up to the whole completion, then
// the usage chunk and [DONE].
TEST(Serve, StreamedChunksAddUpToTheCompletion) {
  ServerProcess server("--model '" + models() + "/lm-kjv'");
  const json request = {{"prompt", "In the beginning"}, {"max_tokens", 40}, {"temperature", 0}};
  const Reply whole = post(server.port(), "/v1/completions", request.dump());
  json streamed = request;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  const Reply r = post(server.port(), "/v1/completions", streamed.dump());
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("Content-Type")->second.find("text/event-stream"), std::string::npos);
  std::string text, finish;
  json usage;
  bool done = false;
  for (size_t at = 0; (at = r.text.find("data: ", at)) != std::string::npos;) {
    const size_t end = r.text.find("\n\n", at);
    const std::string data = r.text.substr(at + 6, end - at - 6);
    at = end;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    const json chunk = json::parse(data);
    EXPECT_EQ(chunk["object"], "text_completion");
    if (chunk.contains("usage")) usage = chunk["usage"];
    for (const json& c : chunk["choices"]) {
      text += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(text, whole.body["choices"][0]["text"]);
  EXPECT_EQ(finish, whole.body["choices"][0]["finish_reason"]);
  EXPECT_EQ(usage, whole.body["usage"]);
  EXPECT_EQ(server.stop(), 0);
}

// LibreTranslate's /translate: test sentences as one array request equal tfm translate of each sentence,
// and Hugging Face's beam-4 translations where tfm translate does.
TEST(Serve, TranslateEqualsTfmTranslate) {
  ServerProcess server("--model '" + models() + "/mt-en-es' --beams 4");
  std::ifstream tsv(test::shared_dir() + "/data/bible-en-es/test.tsv");
  std::ifstream hf(models() + "/mt-en-es/test.beam4.es");
  std::vector<std::string> english, reference;
  for (std::string line, ref; english.size() < 12 && std::getline(tsv, line) && std::getline(hf, ref);) {
    english.push_back(line.substr(0, line.find('\t')));
    reference.push_back(ref);
  }
  const Reply r =
      post(server.port(), "/translate", json{{"q", english}, {"source", "en"}, {"target", "es"}}.dump());
  ASSERT_EQ(r.status, 200) << r.text;
  ASSERT_EQ(r.body["translatedText"].size(), english.size());
  int agree = 0;
  for (size_t i = 0; i < english.size(); ++i) {
    const test::CliResult cli =
        test::run_cli("translate --model '" + models() + "/mt-en-es' --beam 4", english[i] + "\n");
    ASSERT_EQ(cli.code, 0) << cli.err;
    EXPECT_EQ(r.body["translatedText"][i].get<std::string>() + "\n", cli.out) << english[i];
    agree += r.body["translatedText"][i] == reference[i];
  }
  EXPECT_GE(agree, int(english.size()) - 1);
  const Reply one =
      post(server.port(), "/translate",
           json{{"q", english[0]}, {"source", "auto"}, {"target", "es"}, {"alternatives", 2}}.dump());
  ASSERT_EQ(one.status, 200) << one.text;
  EXPECT_EQ(one.body["translatedText"], r.body["translatedText"][0]);
  EXPECT_EQ(one.body["alternatives"].size(), 2u);
  EXPECT_EQ(one.body["detectedLanguage"]["language"], "en");
  const Reply langs = get(server.port(), "/languages");
  ASSERT_EQ(langs.status, 200);
  EXPECT_EQ(langs.body[0]["code"], "en");
  EXPECT_EQ(langs.body[0]["targets"], json({"es"}));
  // A form-encoded request, as LibreTranslate's own front end sends.
  const Reply form = post(server.port(), "/translate", "q=Jesus+wept.&source=en&target=es", {},
                          "application/x-www-form-urlencoded");
  ASSERT_EQ(form.status, 200) << form.text;
  EXPECT_TRUE(form.body["translatedText"].is_string());
  EXPECT_EQ(server.stop(), 0);
}

// Embeddings, tokenize / detokenize, models, metrics.
TEST(Serve, EmbeddingsTokensModelsAndMetrics) {
  ServerProcess server("--model '" + models() + "/lm-kjv' --model kjv2='" + models() + "/lm-kjv'");
  const Reply e = post(server.port(), "/v1/embeddings",
                       json{{"model", "lm-kjv"}, {"input", {"In the beginning", "Jesus wept."}}}.dump());
  ASSERT_EQ(e.status, 200) << e.text;
  ASSERT_EQ(e.body["data"].size(), 2u);
  const std::vector<float> first = e.body["data"][0]["embedding"], second = e.body["data"][1]["embedding"];
  EXPECT_EQ(first.size(), 256u);
  EXPECT_NE(first, second);
  EXPECT_EQ(e.body["data"][1]["index"], 1);
  const Reply b64 =
      post(server.port(), "/v1/embeddings",
           json{{"model", "kjv2"}, {"input", "In the beginning"}, {"encoding_format", "base64"}}.dump());
  ASSERT_EQ(b64.status, 200) << b64.text;
  EXPECT_EQ(b64.body["data"][0]["embedding"].get<std::string>().size(), (256 * 4 + 2) / 3 * 4);

  const Reply t =
      post(server.port(), "/tokenize", json{{"model", "lm-kjv"}, {"content", "In the beginning"}}.dump());
  ASSERT_EQ(t.status, 200) << t.text;
  EXPECT_EQ(t.body["tokens"], scores("lm-kjv")["greedy"][0]["prompt_ids"]);
  const Reply d =
      post(server.port(), "/detokenize", json{{"model", "lm-kjv"}, {"tokens", t.body["tokens"]}}.dump());
  EXPECT_EQ(d.body["content"], "In the beginning");

  const Reply m = get(server.port(), "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body["data"][0]["id"], "lm-kjv");
  EXPECT_EQ(m.body["data"][1]["id"], "kjv2");

  post(server.port(), "/v1/completions",
       json{{"model", "kjv2"}, {"prompt", "And"}, {"max_tokens", 5}, {"ignore_eos", true}}.dump());
  const Reply metrics = get(server.port(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* line :
       {"tfm_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1",
        "tfm_generated_tokens_total{model=\"kjv2\"} 5", "tfm_running_sequences{model=\"kjv2\"} 0",
        "tfm_kv_cache_bytes{model=\"kjv2\"} 0", "tfm_time_to_first_token_seconds_count 1"})
    EXPECT_NE(metrics.text.find(line), std::string::npos) << line << "\n" << metrics.text;
  EXPECT_EQ(server.stop(), 0);
}

// Chat renders the model folder's template (tokenizer_config.json's chat_template, here ChatML): the reply
// equals the completion of the rendered prompt; a template's raise_exception is a 400.
TEST(Serve, ChatRendersTheModelsTemplate) {
  const std::string dir = test::temp_dir("serve-chat");
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"})
    std::filesystem::create_symlink(models() + "/lm-kjv/" + f, dir + "/" + f);
  const std::string chatml =
      "{% for message in messages %}{% if message['role'] == 'tool' %}{{ raise_exception('no tools here') }}"
      "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  std::ofstream(dir + "/tokenizer_config.json") << json{{"chat_template", chatml}}.dump();
  ServerProcess server("--model kjv-chat='" + dir + "'");
  const json messages = {{{"role", "system"}, {"content", "Speak as the king."}},
                         {{"role", "user"}, {"content", "And the LORD said"}}};
  const Reply chat = post(server.port(), "/v1/chat/completions",
                          json{{"messages", messages}, {"max_tokens", 20}, {"temperature", 0}}.dump());
  ASSERT_EQ(chat.status, 200) << chat.text;
  EXPECT_EQ(chat.body["object"], "chat.completion");
  EXPECT_EQ(chat.body["choices"][0]["message"]["role"], "assistant");
  const std::string rendered =
      "<|im_start|>system\nSpeak as the king.<|im_end|>\n<|im_start|>user\nAnd the LORD said<|im_end|>\n"
      "<|im_start|>assistant\n";
  const Reply completion = post(server.port(), "/v1/completions",
                                json{{"prompt", rendered}, {"max_tokens", 20}, {"temperature", 0}}.dump());
  ASSERT_EQ(completion.status, 200) << completion.text;
  EXPECT_EQ(chat.body["choices"][0]["message"]["content"], completion.body["choices"][0]["text"]);
  EXPECT_EQ(chat.body["usage"], completion.body["usage"]);
  const Reply tool = post(server.port(), "/v1/chat/completions",
                          json{{"messages", {{{"role", "tool"}, {"content", "x"}}}}}.dump());
  EXPECT_EQ(tool.status, 400) << tool.text;
  EXPECT_EQ(tool.body["error"]["message"], "no tools here");
  EXPECT_EQ(server.stop(), 0);
}

// Every bad request gets its status and OpenAI's error object, and the server goes on answering.
TEST(Serve, BadRequestsGetTheirStatusAndErrorShape) {
  const std::string key_file = test::temp_dir("serve") + "/key";
  std::ofstream(key_file) << "sesame\n";
  ServerProcess server("--model '" + models() + "/lm-kjv' --model '" + models() +
                       "/mt-en-es' --api-key-file '" + key_file + "' --max-body-bytes 4096");
  const httplib::Headers auth = {{"Authorization", "Bearer sesame"}};
  struct Case {
    std::string path, body;
    httplib::Headers headers;
    int status;
    std::string code, param;
  };
  const std::string big(5000, 'a');
  const std::vector<Case> cases = {
      {"/v1/completions", R"({"model":"lm-kjv","prompt":"a"})", {}, 401, "missing_api_key", ""},
      {"/v1/completions",
       R"({"model":"lm-kjv","prompt":"a"})",
       {{"Authorization", "Bearer sesamf"}},
       401,
       "invalid_api_key",
       ""},
      {"/v1/completions", R"({"model":"lm-kjv","prompt":"a")", auth, 400, "invalid_json", ""},
      {"/v1/completions", "{\"model\":\"lm-kjv\",\"prompt\":\"\xC3\x28\"}", auth, 400, "invalid_utf8", ""},
      {"/v1/completions", R"({"model":"lm-kjv","prompt":"a","max_tokens":"ten"})", auth, 400, "invalid_type",
       "max_tokens"},
      {"/v1/completions", R"({"model":"lm-kjv","prompt":"a","max_tokens":300})", auth, 400,
       "context_length_exceeded", "max_tokens"},
      {"/v1/completions", R"({"model":"lm-kjv","prompt":""})", auth, 400, "empty_prompt", "prompt"},
      {"/v1/completions", R"({"model":"lm-kjv","prompt":[1,2,99999]})", auth, 400, "invalid_token", "prompt"},
      {"/v1/completions", R"({"model":"lm-kjv","temperature":0.5})", auth, 400, "invalid_value", "prompt"},
      {"/v1/completions", R"({"model":"lm-kjv","prompt":"a","temperature":3})", auth, 400, "invalid_value",
       "temperature"},
      {"/v1/completions", R"({"model":"gpt-9","prompt":"a"})", auth, 404, "model_not_found", "model"},
      {"/v1/completions", R"({"prompt":"a"})", auth, 400, "missing_model", "model"},
      {"/v1/completions", R"({"model":"mt-en-es","prompt":"a"})", auth, 400, "wrong_model_kind", "model"},
      {"/v1/completions", R"(["not","an","object"])", auth, 400, "invalid_json", ""},
      {"/v1/completions", "{\"model\":\"lm-kjv\",\"prompt\":\"" + big + "\"}", auth, 413, "body_too_large",
       ""},
      {"/v1/chat/completions", R"({"model":"lm-kjv","messages":[]})", auth, 400, "invalid_value", "messages"},
      {"/v1/chat/completions", R"({"model":"lm-kjv","messages":[{"content":"hi"}]})", auth, 400,
       "invalid_value", "messages[0].role"},
      {"/translate", R"({"q":"Hello","source":"en","target":"fr"})", auth, 400, "unsupported_language",
       "target"},
      {"/translate", R"({"q":5,"source":"en","target":"es"})", auth, 400, "invalid_type", "q"},
      {"/detokenize", R"({"model":"lm-kjv","tokens":[-1]})", auth, 400, "invalid_value", "tokens"},
      {"/v1/nothing", "{}", auth, 404, "", ""},
  };
  for (const Case& c : cases) {
    const Reply r = post(server.port(), c.path, c.body, c.headers);
    EXPECT_EQ(r.status, c.status) << c.path << " " << c.body.substr(0, 80) << "\n" << r.text;
    ASSERT_TRUE(r.body.contains("error")) << r.text;
    const json& e = r.body["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.text;
    EXPECT_TRUE(e["type"].is_string()) << r.text;
    EXPECT_TRUE(e.contains("param") && e.contains("code")) << r.text;
    if (!c.code.empty()) {
      EXPECT_EQ(e["code"], c.code) << r.text;
    }
    if (!c.param.empty()) {
      EXPECT_EQ(e["param"], c.param) << r.text;
    }
    EXPECT_TRUE(healthy(server.port())) << "after " << c.body.substr(0, 80);
  }
  // The prompt's limit is named.
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += " the";
  const Reply r =
      post(server.port(), "/v1/completions", json{{"model", "lm-kjv"}, {"prompt", long_prompt}}.dump(), auth);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("at most 256"), std::string::npos) << r.text;
  EXPECT_EQ(server.stop(), 0);
}

// A full queue answers 429 with Retry-After; the others are served.
TEST(Serve, AFullQueueAnswers429WithRetryAfter) {
  ServerProcess server("--model '" + models() + "/lm-kjv' --parallel 1 --max-queue 1");
  std::vector<int> statuses(6);
  std::vector<std::string> retry(6);
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i)
    clients.emplace_back([&, i] {
      const Reply r = post(
          server.port(), "/v1/completions",
          json{{"prompt", "And the LORD said"}, {"max_tokens", 200}, {"temperature", 0}, {"ignore_eos", true}}
              .dump());
      statuses[size_t(i)] = r.status;
      if (r.headers.count("Retry-After")) retry[size_t(i)] = r.headers.find("Retry-After")->second;
    });
  for (auto& c : clients) c.join();
  int ok = 0, refused = 0;
  for (int i = 0; i < 6; ++i) {
    ok += statuses[size_t(i)] == 200;
    if (statuses[size_t(i)] == 429) {
      ++refused;
      EXPECT_EQ(retry[size_t(i)], "1");
    }
  }
  EXPECT_GE(ok, 2);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(ok + refused, 6);
  EXPECT_EQ(server.stop(), 0);
}

// SIGTERM while a request runs: the request finishes whole, then the server exits 0.
TEST(Serve, SigtermFinishesInFlightRequestsThenExits) {
  ServerProcess server("--model '" + models() + "/lm-kjv'");
  Reply r;
  std::thread client([&] {
    r = post(
        server.port(), "/v1/completions",
        json{{"prompt", "And the LORD said"}, {"max_tokens", 250}, {"temperature", 0}, {"ignore_eos", true}}
            .dump());
  });
  // Wait until the request is decoding, then stop the server.
  for (int i = 0;
       i < 5000 && get(server.port(), "/metrics").text.find("tfm_running_sequences{model=\"lm-kjv\"} 1") ==
                       std::string::npos;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(server.pid(), SIGTERM);
  client.join();
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 250);
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace tfm
