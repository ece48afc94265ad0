#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan, in build-fuzz/) and runs each one for
# SECONDS (default 60), one after the other, each in one process on one core. The runs start from the
# seeds in fuzz/corpus/<target>/ and keep what they find in build-fuzz/fuzz-corpus/<target>/ (the
# seeds are never changed); an input that crashes, hangs or breaks a property is saved in
# build-fuzz/fuzz-artifacts/<target>/ and makes the script exit non-zero. Replay one with
#   build-fuzz/fuzz/<target> <file>
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=(fuzz_tokenizer_json fuzz_bpe_encode fuzz_chat_template fuzz_serve_request)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DTFM_FUZZ=ON -DTFM_BUILD_TESTS=OFF -DTFM_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"

# Per target: the longest input (a tokenizer.json needs room for a vocabulary; a text to encode does
# not; a chat template is in between) and any extra flags.
declare -A max_len=([fuzz_tokenizer_json]=4096 [fuzz_bpe_encode]=1024 [fuzz_chat_template]=2048 [fuzz_serve_request]=4096)
declare -A extra=([fuzz_tokenizer_json]="-dict=fuzz/tokenizer_json.dict" [fuzz_bpe_encode]="" [fuzz_chat_template]="" [fuzz_serve_request]="")

status=0
summary=""
for target in "${targets[@]}"; do
  corpus=build-fuzz/fuzz-corpus/$target
  artifacts=build-fuzz/fuzz-artifacts/$target
  log=build-fuzz/fuzz-$target.log
  mkdir -p "$corpus" "$artifacts"
  echo "== $target: ${seconds}s, -max_len=${max_len[$target]} (log: $log)"
  # shellcheck disable=SC2086  # extra holds zero or more flags
  if OMP_WAIT_POLICY=PASSIVE "build-fuzz/fuzz/$target" "$corpus" "fuzz/corpus/$target" \
    -max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 ${extra[$target]} >"$log" 2>&1; then
    result="ok"
  else
    result="FAILED: see $log and $artifacts/"
    status=1
  fi
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/^#([0-9]+)\s+\w+\s+/\1 runs, /')
  speed=$(grep -oE 'average_exec_per_sec: +[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  summary+="$target: $result; $stats; ${speed} exec/s"$'\n'
done
echo
printf '%s' "$summary"
exit $status
