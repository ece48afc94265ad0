#!/usr/bin/env bash
# Load benchmark of `tfm serve` (continuous batching) with bench/serve_load.cpp, and the same requests sent
# to the PyTorch peer (bench/peers/torch_serve_peer.py, one request at a time) when python3-torch is there.
#
#   bench/serve_bench.sh [OUT.jsonl]          (default build/serve_bench.jsonl)
#
# For each model, one server (port 0, loopback), then serve_load at 1, 4, 16 and 64 concurrent clients:
#   lm-kjv      streamed completions of KJV verses (the last 617 lines of kjv.txt, the corpus's last 1/50),
#               max_tokens 64, temperature 0, ignore_eos (every request generates its 64 tokens)
#   gpt2-small  the same requests on GPT-2 small's shape with random weights (`tfm_bench_serve_load
#               make-gpt2-small`, lm-kjv's tokenizer padded to 50,257 ids); SKIP_GPT2=1 leaves it out
#   mt-en-es    /translate of the 617 English test sentences, one per request, beams 4; compared with
#               `tfm translate --batch 32 --beam 4` on the same file (wall time)
# and the server's peak RSS (VmHWM of /proc/PID/status) after its levels.
#
# Environment: TFM_CLI (build/tfm), SERVE_LOAD (build/bench/tfm_bench_serve_load), TFM_SHARED (../shared),
# CLIENTS ("1 4 16 64"), THREADS (2: --threads of tfm serve and torch.set_num_threads of the peer),
# MAX_SECONDS (90: per level; requests in flight then finish), PEER (auto | 0), PEER_CLIENTS ("1 4"),
# PEER_LM_REQUESTS (16), PEER_MT_REQUESTS (100). Everything goes to 127.0.0.1 only.
# Build first: cmake --build build -j2 --target tfm_cli tfm_bench_serve_load
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI="${TFM_CLI:-$ROOT/build/tfm}"
LOAD="${SERVE_LOAD:-$ROOT/build/bench/tfm_bench_serve_load}"
SHARED="${TFM_SHARED:-$ROOT/../shared}"
OUT="${1:-$ROOT/build/serve_bench.jsonl}"
CLIENTS="${CLIENTS:-1 4 16 64}"
THREADS="${THREADS:-2}"
MAX_SECONDS="${MAX_SECONDS:-90}"
PEER="${PEER:-auto}"
PEER_CLIENTS="${PEER_CLIENTS:-1 4}"
PEER_LM_REQUESTS="${PEER_LM_REQUESTS:-16}"
PEER_MT_REQUESTS="${PEER_MT_REQUESTS:-100}"
# OpenMP's default wait policy (spin, then sleep) is the fastest on a quiet machine; on one that other work
# also loads, OMP_WAIT_POLICY=PASSIVE (in the environment) keeps the spinning threads from starving the rest.

for f in "$CLI" "$LOAD"; do [ -x "$f" ] || { echo "missing $f: cmake --build build -j2 --target tfm_cli tfm_bench_serve_load" >&2; exit 1; }; done
LM_DIR="$SHARED/models/lm-kjv"
MT_DIR="$SHARED/models/mt-en-es"
TSV="$SHARED/data/bible-en-es/test.tsv"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tfm-serve-bench.XXXXXX")"
SRV_PID=""
cleanup() {
  if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then kill -TERM "$SRV_PID" 2>/dev/null || true; sleep 1; kill -KILL "$SRV_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tail -n 617 "$SHARED/data/kjv/kjv.txt" >"$WORK/kjv_valid.txt"
cut -f1 "$TSV" >"$WORK/test.en"
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

# start_server LABEL COMMAND...: runs it, waits for "...: listening on http://127.0.0.1:PORT"; sets SRV_PID, SRV_URL.
start_server() {
  local label="$1"; shift
  "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" &
  SRV_PID=$!
  SRV_URL=""
  for _ in $(seq 1 1800); do  # 180 s
    kill -0 "$SRV_PID" 2>/dev/null || { echo "$label exited before it was ready:" >&2; cat "$WORK/$label.err" >&2; exit 1; }
    SRV_URL="$(sed -n 's#^.*: listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)$#\1#p' "$WORK/$label.out" | head -n1)"
    [ -n "$SRV_URL" ] && break
    sleep 0.1
  done
  [ -n "$SRV_URL" ] || { echo "$label printed no ready line" >&2; exit 1; }
  echo "# $label: pid $SRV_PID at $SRV_URL" >&2
}

# stop_server LABEL: records VmHWM, SIGTERM, waits; prints {"server":LABEL,"peak_rss_mib":...,"exit":RC}.
stop_server() {
  local label="$1" hwm rc
  hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$SRV_PID/status" 2>/dev/null || echo 0)"
  kill -TERM "$SRV_PID"
  set +e; wait "$SRV_PID"; rc=$?; set -e
  SRV_PID=""
  emit "{\"server\":\"$label\",\"peak_rss_mib\":$(awk -v k="${hwm:-0}" 'BEGIN {printf "%.1f", k / 1024}'),\"exit\":$rc}"
}

emit() { echo "$1" | tee -a "$OUT"; }

# load ENGINE MODEL C REQUESTS ARGS...: one serve_load run, its JSON line tagged with engine and model.
load() {
  local engine="$1" model="$2" clients="$3" requests="$4"; shift 4
  local line
  line="$("$LOAD" load --url "$SRV_URL" --model "$model" --clients "$clients" --requests "$requests" \
    --max-seconds "$MAX_SECONDS" "$@")"
  emit "{\"engine\":\"$engine\",\"served_model\":\"$model\",${line#\{}"
}

lm_levels() {  # ENGINE MODEL [REQUESTS]
  local c n
  for c in $CLIENTS; do
    n="${3:-$(( c * 2 > 16 ? c * 2 : 16 ))}"
    load "$1" "$2" "$c" "$n" --prompts "$WORK/kjv_valid.txt" --max-tokens 64 --temperature 0 --ignore-eos
  done
}

mt_levels() {  # ENGINE [REQUESTS] [CLIENT LEVELS]
  local c
  for c in ${3:-$CLIENTS}; do
    load "$1" mt-en-es "$c" "${2:-617}" --mode translate --prompts "$TSV" --tsv --beams 4 --count-tokens --timeout 900
  done
}

SERVE=("$CLI" serve --host 127.0.0.1 --port 0 --threads "$THREADS" --parallel 64 --max-queue 1024 --timeout 900)

# ---- tfm serve
start_server tfm-lm-kjv "${SERVE[@]}" --model "$LM_DIR"
lm_levels tfm lm-kjv
stop_server tfm-lm-kjv

if [ "${SKIP_GPT2:-0}" != 1 ]; then
  "$LOAD" make-gpt2-small --out "$WORK/gpt2-small" --tokenizer "$LM_DIR/tokenizer.json" >&2
  start_server tfm-gpt2-small "${SERVE[@]}" --model "$WORK/gpt2-small"
  lm_levels tfm gpt2-small
  stop_server tfm-gpt2-small
else
  echo "# gpt2-small skipped (SKIP_GPT2=1)" >&2
fi

start_server tfm-mt-en-es "${SERVE[@]}" --beams 4 --model "$MT_DIR"
mt_levels tfm
stop_server tfm-mt-en-es

# The CLI on the same 617 sentences, batched.
start="$(date +%s.%N)"
OMP_NUM_THREADS="$THREADS" "$CLI" translate --model "$MT_DIR" --batch 32 --beam 4 <"$WORK/test.en" >"$WORK/cli.es"
wall="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')"
same="$(paste -d '\t' "$WORK/cli.es" "$MT_DIR/test.beam4.es" | awk -F '\t' '$1 == $2' | wc -l)"
emit "{\"engine\":\"tfm translate --batch 32 --beam 4\",\"sentences\":617,\"wall_s\":$wall,\"sentences_per_s\":$(awk -v w="$wall" 'BEGIN {printf "%.2f", 617 / w}'),\"lines_equal_reference\":$same,\"note\":\"wall time includes loading the model\"}"

# ---- the PyTorch peer, one request at a time
if [ "$PEER" != 0 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  PY=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
  [ -d /usr/lib/x86_64-linux-gnu/openblas-openmp ] && PY+=(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp)
  PY+=(/usr/bin/python3 "$ROOT/bench/peers/torch_serve_peer.py" --tfm "$CLI" --threads "$THREADS" --max-seconds 3600)
  start_server torch-lm-kjv "${PY[@]}" --lm "$LM_DIR" --prompts "$WORK/kjv_valid.txt"
  CLIENTS="$PEER_CLIENTS" lm_levels torch lm-kjv "$PEER_LM_REQUESTS"
  stop_server torch-lm-kjv
  if [ "${SKIP_GPT2:-0}" != 1 ]; then
    start_server torch-gpt2-small "${PY[@]}" --lm "$WORK/gpt2-small" --prompts "$WORK/kjv_valid.txt"
    CLIENTS="$PEER_CLIENTS" lm_levels torch gpt2-small "$PEER_LM_REQUESTS"
    stop_server torch-gpt2-small
  fi
  start_server torch-mt-en-es "${PY[@]}" --mt "$MT_DIR" --tsv-prompts "$TSV"
  mt_levels torch "$PEER_MT_REQUESTS" "$PEER_CLIENTS"
  stop_server torch-mt-en-es
else
  echo "# PyTorch peer skipped (PEER=0, or no torch for /usr/bin/python3: apt-get install -y python3-torch)" >&2
fi
echo "# results: $OUT" >&2
