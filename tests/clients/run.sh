#!/usr/bin/env bash
# Real-client tests of `tfm serve`: installs the pinned npm clients (npm ci, once), starts `tfm serve` on a
# free loopback port with lm-kjv and mt-en-es, runs tests/clients/*.test.mjs with node's test runner against
# it, then stops the server with SIGTERM and checks that it exits 0.
#
#   tests/clients/run.sh [TFM_CLI [TFM_SHARED]]      (or the environment variables of those names)
#   TFM_CLIENT_TESTS="errors completions" tests/clients/run.sh   # only those files
#
# Exits 77 (CTest's SKIP_RETURN_CODE) when node (20 or later) or npm is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLI="${1:-${TFM_CLI:-$ROOT/build/tfm}}"
SHARED="${2:-${TFM_SHARED:-$ROOT/../shared}}"

skip() { echo "SKIP: $*"; exit 77; }
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || skip "node $NODE_MAJOR is older than 20"

[ -x "$CLI" ] || { echo "no tfm binary at $CLI" >&2; exit 1; }
CLI="$(cd "$(dirname "$CLI")" && pwd)/$(basename "$CLI")"
SHARED="$(cd "$SHARED" && pwd)"
for d in "$SHARED/models/lm-kjv" "$SHARED/models/mt-en-es" "$SHARED/data/bible-en-es" "$SHARED/data/kjv"; do
  [ -d "$d" ] || { echo "missing $d" >&2; exit 1; }
done
"$CLI" serve --help >/dev/null 2>&1 || { echo "$CLI has no 'serve' command" >&2; exit 1; }

# npm ci once: again only when the lock changed since the last install.
if [ ! -f "$HERE/node_modules/.package-lock.json" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Whether process $1 runs (a zombie, exited but not yet waited for, does not).
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tfm-serve-clients.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && alive "$SERVER_PID"; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$SERVER_PID" || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KEY="tfm-client-test-$RANDOM$RANDOM"
MAX_BODY=262144
export OMP_WAIT_POLICY=PASSIVE
"$CLI" serve --host 127.0.0.1 --port 0 \
  --model "$SHARED/models/lm-kjv" --model "$SHARED/models/mt-en-es" \
  --api-key "$KEY" --max-body-bytes "$MAX_BODY" --parallel 16 --max-queue 64 --beams 4 --threads 2 \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

PORT=""
for _ in $(seq 1 1200); do  # 120 s at most
  if ! alive "$SERVER_PID"; then
    echo "tfm serve exited before it was ready:" >&2; cat "$WORK/server.out" "$WORK/server.err" >&2; exit 1
  fi
  PORT="$(sed -n 's#^tfm serve: listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$#\1#p' "$WORK/server.out" | head -n1)"
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "tfm serve printed no ready line in 120 s:" >&2; cat "$WORK/server.out" "$WORK/server.err" >&2; exit 1; }
echo "tfm serve (pid $SERVER_PID) is listening on 127.0.0.1:$PORT"
sed -n '2,$p' "$WORK/server.out"

export TFM_BASE_URL="http://127.0.0.1:$PORT" TFM_API_KEY="$KEY" TFM_CLI="$CLI" TFM_SHARED="$SHARED" TFM_MAX_BODY_BYTES="$MAX_BODY"
FILES=()
if [ -n "${TFM_CLIENT_TESTS:-}" ]; then
  for name in $TFM_CLIENT_TESTS; do FILES+=("$HERE/$name.test.mjs"); done
else
  FILES=("$HERE"/*.test.mjs)
fi
set +e
(cd "$HERE" && node --test --test-concurrency=1 --test-reporter=spec "${FILES[@]}")
TESTS_RC=$?
set -e

# SIGTERM: the server finishes what is in flight and exits 0.
kill -TERM "$SERVER_PID"
SERVER_RC=""
for _ in $(seq 1 300); do  # 30 s
  if ! alive "$SERVER_PID"; then
    set +e; wait "$SERVER_PID"; SERVER_RC=$?; set -e
    break
  fi
  sleep 0.1
done
SERVER_PID_WAS="$SERVER_PID"
if [ -z "$SERVER_RC" ]; then
  echo "FAIL: tfm serve (pid $SERVER_PID_WAS) did not exit within 30 s of SIGTERM" >&2
  SERVER_RC=124
else
  SERVER_PID=""
fi
if [ "$SERVER_RC" -ne 0 ] || [ "$TESTS_RC" -ne 0 ]; then
  echo "--- tfm serve stderr (last 40 lines) ---" >&2
  tail -n 40 "$WORK/server.err" >&2
fi
[ "$SERVER_RC" -eq 0 ] || echo "FAIL: tfm serve exited $SERVER_RC after SIGTERM (expected 0)" >&2
[ "$TESTS_RC" -eq 0 ] || exit "$TESTS_RC"
[ "$SERVER_RC" -eq 0 ] || exit 1
echo "tfm serve exited 0 after SIGTERM"
