"""PyTorch peer for tfm serve's load benchmark (bench/serve_bench.sh): the KV-cache decoders of torch_decode.py
behind the same HTTP endpoints, serving requests one at a time.

What a plain PyTorch serving loop without batching does: a single-threaded HTTP/1.0 server (one request at a
time, connections answered in the order they are accepted; each response closes its connection), so C
concurrent clients of bench/serve_load.cpp queue behind each other. It speaks just enough of tfm serve's API
for serve_load:

  GET  /health                  {"status": "ok"}
  POST /v1/completions          prompt (string or ids), max_tokens, temperature 0 only (greedy), ignore_eos,
                                stream (SSE "data: {...}" per token, then usage with stream_options.include_usage,
                                then "data: [DONE]")
  POST /translate               LibreTranslate's q (one string), source, target, beams (default 4; 1 = greedy)
  POST /tokenize                {"content"} -> {"tokens"} (for serve_load --count-tokens)

Models: --lm DIR (a GPT-2 Hugging Face folder: lm-kjv, or the GPT-2-small-shaped folder that
`tfm_bench_serve_load make-gpt2-small` writes) and/or --mt DIR (mt-en-es). Decoding is torch_decode.py's:
batch-1 greedy with the KV cache for GPT-2, HF's beam search (early_stopping=True) for Marian, one source
at a time.

Tokenizing: Python `tokenizers` is not installable here. Texts listed with --prompts / --tsv-prompts are
tokenized once at start-up by `tfm tokenize` (as torch_decode.py does, outside the timed region); any other
text costs one `tfm tokenize` call in the request. Decoding is done here (byte-level BPE: the tokens' strings
mapped back to bytes), checked against `tfm tokenize --decode` at start-up.

Bounded: it exits after --max-requests requests or --max-seconds seconds, and binds loopback only. Prints
"torch_serve_peer: listening on http://127.0.0.1:PORT" when ready. Fair setup as torch_decode.py's
(bench/peers/README.md): OpenBLAS's OpenMP build, --threads 1 or 2.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.dont_write_bytecode = True  # no __pycache__ beside the peers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import torch_decode as td  # noqa: E402


def byte_decoder():
    """GPT-2's bytes-to-unicode alphabet, inverted: character -> byte."""
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


class Tokenizer:
    """tokenizer.json: byte-level BPE decoding here; encoding through `tfm tokenize` (cached)."""

    def __init__(self, path, tfm):
        self.path, self.tfm = path, tfm
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        self.pieces = {i: t for t, i in spec["model"]["vocab"].items()}
        self.special = set()
        for a in spec.get("added_tokens", []):
            self.pieces[a["id"]] = a["content"]
            if a.get("special"):
                self.special.add(a["id"])
        self.bytes_of = byte_decoder()
        self.cache = {}

    def preload(self, texts):
        texts = [t for t in dict.fromkeys(texts) if t and t not in self.cache]
        if texts:
            for text, ids in zip(texts, td.tfm_tokenize(self.tfm, self.path, texts)):
                self.cache[text] = [int(t) for t in ids.split()]

    def encode(self, text):
        if text not in self.cache:
            self.preload([text])
        return self.cache[text]

    def decode_bytes(self, ids):
        out = bytearray()
        for i in ids:
            if i in self.special:
                continue
            piece = self.pieces.get(i, "")
            out.extend(self.bytes_of.get(ch, ord("?")) for ch in piece)
        return bytes(out)

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def check(self, id_lists):
        """Our decode equals `tfm tokenize --decode` on these id lists (special ids dropped first)."""
        kept = [[i for i in ids if i not in self.special] for ids in id_lists]
        expected = td.tfm_tokenize(self.tfm, self.path, [" ".join(map(str, ids)) for ids in kept], decode=True)
        for ids, text in zip(kept, expected):
            got = self.decode(ids)
            if got != text:
                sys.exit(f"{self.path}: Python decode {got!r} differs from tfm's {text!r} for {ids[:20]}")


class LM:
    def __init__(self, folder, tfm):
        self.name = os.path.basename(os.path.normpath(folder))
        self.model = td.GPT2.from_folder(folder)
        with open(f"{folder}/config.json") as f:
            config = json.load(f)
        self.eos_id = config.get("eos_token_id", 0)
        self.tok = Tokenizer(f"{folder}/tokenizer.json", tfm)

    def generate(self, prompt, max_tokens, ignore_eos):
        """Greedy with the KV cache, batch 1 (torch_decode.GPT2.greedy, one token at a time): yields ids."""
        if len(prompt) + max_tokens > self.model.context:
            raise ValueError(f"{len(prompt)} + {max_tokens} tokens exceed the context of {self.model.context}")
        caches = self.model.new_caches(len(prompt) + max_tokens)
        step_input = prompt
        for _ in range(max_tokens):
            logits = self.model.forward(torch.tensor([step_input]), caches)
            token = int(logits[0].argmax())
            yield token
            if token == self.eos_id and not ignore_eos:
                return
            step_input = [token]


class MT:
    def __init__(self, folder, tfm):
        self.name = os.path.basename(os.path.normpath(folder))
        self.model = td.Marian(folder)
        self.tok = Tokenizer(f"{folder}/tokenizer.json", tfm)

    def translate(self, text, beams, max_new_tokens=256):
        source = self.tok.encode(text)
        if beams == 1:
            ids = td.greedy_translate(self.model, [source], max_new_tokens)[0]
        else:
            ids = td.beam_translate(self.model, [source], beams, max_new_tokens, 1.0, True)[0][0]
        special = {self.model.pad_id, self.model.eos_id, 2}
        return self.tok.decode([t for t in ids if t not in special]), len(ids)


class PeerServer(HTTPServer):
    request_queue_size = 256  # the listen backlog: every waiting client's connection is kept


class ApiError(Exception):
    def __init__(self, status, message, param=None):
        super().__init__(message)
        self.status, self.param = status, param


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: the next waiting client goes next

        def log_message(self, *args):
            pass

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(length) or b"{}")
            except ValueError as e:
                raise ApiError(400, f"bad JSON: {e}") from e

        def handle_one(self, fn):
            state["requests"] += 1
            try:
                fn()
            except ApiError as e:
                self.send_json(e.status, {"error": {"message": str(e), "type": "invalid_request_error",
                                                    "param": e.param, "code": None}})
            except (BrokenPipeError, ConnectionResetError):
                pass
            if state["requests"] >= state["max_requests"]:
                threading.Thread(target=state["server"].shutdown, daemon=True).start()

        def do_GET(self):
            if self.path == "/health":
                self.handle_one(lambda: self.send_json(200, {"status": "ok"}))
            else:
                self.handle_one(lambda: self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}}))

        def do_POST(self):
            routes = {"/v1/completions": self.completions, "/translate": self.translate, "/tokenize": self.tokenize}
            route = routes.get(self.path)
            if route is None:
                self.handle_one(lambda: self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}}))
            else:
                self.handle_one(lambda: route(self.body()))

        def pick(self, kind, name):
            models = state[kind]
            if not models:
                raise ApiError(400, f"this peer has no {kind} model", "model")
            if not name:
                return models[0]
            for m in models:
                if m.name == name:
                    return m
            raise ApiError(404, f"model {name!r} not loaded", "model")

        def tokenize(self, body):
            name = body.get("model")
            model = None
            for m in state["lm"] + state["mt"]:
                if not name or m.name == name:
                    model = m
                    break
            if model is None:
                raise ApiError(404, f"model {name!r} not loaded", "model")
            self.send_json(200, {"tokens": model.tok.encode(str(body.get("content", "")))})

        def completions(self, body):
            lm = self.pick("lm", body.get("model"))
            if float(body.get("temperature", 1.0)) != 0.0:
                raise ApiError(400, "this peer decodes greedily only: temperature 0", "temperature")
            prompt = body.get("prompt")
            ids = prompt if isinstance(prompt, list) else lm.tok.encode(str(prompt))
            max_tokens = int(body.get("max_tokens", 16))
            ignore_eos = bool(body.get("ignore_eos", False))
            stream = bool(body.get("stream", False))
            created, rid = int(time.time()), f"cmpl-peer-{state['requests']}"
            generated, sent = [], b""
            try:
                tokens = lm.generate(list(ids), max_tokens, ignore_eos)
                if not stream:
                    with torch.inference_mode():
                        generated = list(tokens)
                    finish = "stop" if generated and generated[-1] == lm.eos_id and not ignore_eos else "length"
                    self.send_json(200, {"id": rid, "object": "text_completion", "created": created, "model": lm.name,
                                         "choices": [{"index": 0, "text": lm.tok.decode(generated),
                                                      "finish_reason": finish, "logprobs": None}],
                                         "usage": {"prompt_tokens": len(ids), "completion_tokens": len(generated),
                                                   "total_tokens": len(ids) + len(generated)}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()

                def event(obj):
                    self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                    self.wfile.flush()

                def chunk(text, finish=None):
                    return {"id": rid, "object": "text_completion", "created": created, "model": lm.name,
                            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}

                with torch.inference_mode():
                    for token in tokens:
                        generated.append(token)
                        data = lm.tok.decode_bytes(generated)
                        # Only whole UTF-8 characters: hold back a trailing partial one.
                        cut = len(data)
                        while cut > len(sent) and cut > 0:
                            try:
                                data[len(sent):cut].decode("utf-8")
                                break
                            except UnicodeDecodeError:
                                cut -= 1
                        delta = data[len(sent):cut].decode("utf-8", errors="replace")
                        sent = data[:cut]
                        if delta:
                            event(chunk(delta))
                finish = "stop" if generated and generated[-1] == lm.eos_id and not ignore_eos else "length"
                event(chunk("", finish))
                if (body.get("stream_options") or {}).get("include_usage"):
                    event({"id": rid, "object": "text_completion", "created": created, "model": lm.name, "choices": [],
                           "usage": {"prompt_tokens": len(ids), "completion_tokens": len(generated),
                                     "total_tokens": len(ids) + len(generated)}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except ValueError as e:
                raise ApiError(400, str(e), "max_tokens") from e

        def translate(self, body):
            mt = self.pick("mt", body.get("model"))
            q = body.get("q")
            if not isinstance(q, str):
                raise ApiError(400, "this peer translates one string q per request", "q")
            beams = int(body.get("beams", 4))
            with torch.inference_mode():
                text, _ = mt.translate(q, beams)
            self.send_json(200, {"translatedText": text})

    return Handler


def read_lines(path, tsv):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").rstrip("\r") for line in f]
    if tsv:
        lines = [line.split("\t")[0] for line in lines]
    return [line for line in lines if line]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm", action="append", default=[], help="GPT-2 Hugging Face folder (repeatable)")
    parser.add_argument("--mt", action="append", default=[], help="Marian folder (repeatable)")
    parser.add_argument("--tfm", default="build/tfm", help="tfm binary, for tokenizing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--prompts", action="append", default=[], help="texts to tokenize at start-up (lines)")
    parser.add_argument("--tsv-prompts", action="append", default=[], help="the same, a TSV's first column")
    parser.add_argument("--max-requests", type=int, default=100000, help="exit after this many requests")
    parser.add_argument("--max-seconds", type=float, default=3600, help="exit after this many seconds")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("torch_serve_peer: loopback addresses only")
    if not args.lm and not args.mt:
        sys.exit("torch_serve_peer: give --lm and/or --mt")
    torch.set_num_threads(args.threads)
    state = {"lm": [LM(d, args.tfm) for d in args.lm], "mt": [MT(d, args.tfm) for d in args.mt],
             "requests": 0, "max_requests": args.max_requests}
    texts = [t for p in args.prompts for t in read_lines(p, False)]
    texts += [t for p in args.tsv_prompts for t in read_lines(p, True)]
    for m in state["lm"] + state["mt"]:
        m.tok.preload(texts)
        m.tok.check(list(m.tok.cache.values())[:200])
    with torch.inference_mode():  # warm-up, untimed
        for lm in state["lm"]:
            list(lm.generate([1, 2, 3], 4, True))
        for mt in state["mt"]:
            mt.translate(texts[0] if texts else "Hello.", 1, 8)
    server = PeerServer((args.host, args.port), make_handler(state))
    state["server"] = server
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    timer = threading.Timer(args.max_seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    print(f"torch_serve_peer: listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    for m in state["lm"] + state["mt"]:
        print(f"model {m.name}: torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    server.serve_forever()
    server.server_close()
    print(json.dumps({"peer": "torch_serve_peer", "requests": state["requests"],
                      "peak_rss_mib": round(td.peak_rss_mib(), 1)}), flush=True)


if __name__ == "__main__":
    main()
