#!/usr/bin/env bash
# The attention variants on long sequences (issue 7 item 6): dense softmax (the fused flash kernel; the
# unfused kernel for contrast up to 4k), a sliding window of 256, block-sparse (the window plus 64 global
# tokens) and linear attention.
#
#   bench/attention_variants.sh speed [THREADS=2]
#     tfm_bench_long_context on 1,024, 4,096 and 16,384 tokens: one training step (time, tokens/s, peak
#     RSS) and decoding 64 tokens after a prompt of the rest (time per token, KV cache size); then the
#     PyTorch peer's training step (bench/peers/torch_long_context.py, eager attention) at 1,024 and 4,096
#     (16,384 needs more than 30 GB there). One JSON line per measurement.
#   bench/attention_variants.sh quality [OUT=runs/attention-variants] [STEPS=1000] [THREADS=2]
#     recipes/lm-kjv-tiny.toml's model trained on the bundled KJV text at a context of 1,024 tokens, once
#     per variant (window 128, block-sparse 128 + 16 global tokens; same seed and batches), then its
#     validation perplexity in windows of 1,024 and the run's tokens/s. Finished runs in OUT are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-speed}
if [ "$what" = speed ]; then
  THREADS=${2:-2}
  for mode in train decode; do
    echo "mode $mode"
    for len in 1024 4096 16384; do
      for v in dense dense-unfused window block-sparse linear; do
        if [ $v = dense-unfused ] && [ $len -gt 4096 ]; then continue; fi
        build/bench/tfm_bench_long_context --mode $mode --variant $v --len $len --threads "$THREADS"
      done
    done
  done
  for len in 1024 4096; do
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      /usr/bin/python3 bench/peers/torch_long_context.py --len $len --threads "$THREADS"
  done
  exit 0
fi
OUT=${2:-runs/attention-variants}
STEPS=${3:-1000}
THREADS=${4:-2}
TFM=${TFM:-build/tfm}
mkdir -p "$OUT"
declare -A EXTRA=(
  [dense]=''
  [window]='sliding_window = 128'
  [block-sparse]=$'sliding_window = 128\nglobal_tokens = 16'
  [linear]='attention = "linear"'
)
printf '| attention | validation perplexity (context 1,024) | training tokens/s |\n|---|---:|---:|\n'
for v in dense window block-sparse linear; do
  if ! grep -qs "\"step\":$STEPS," "$OUT/$v/metrics.jsonl"; then
    sed -e "s/^max_len = .*/max_len = 1024\n${EXTRA[$v]//$'\n'/\\n}/" \
      -e "s/^max_steps = .*/max_steps = $STEPS/" -e "s/^eval_every = .*/eval_every = $STEPS/" \
      -e "s/^checkpoint_every = .*/checkpoint_every = $STEPS/" -e "s|^out_dir = .*|out_dir = \"$OUT/$v\"\nthreads = $THREADS|" \
      recipes/lm-kjv-tiny.toml >"$OUT/$v.toml"
    "$TFM" train --config "$OUT/$v.toml" --quiet >"$OUT/$v.log" 2>&1
  fi
  python3 - "$OUT/$v/metrics.jsonl" "$v" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
valid = [r["valid_loss"] for r in rows if "valid_loss" in r][-1]
tps = [r["tokens_per_second"] for r in rows if "tokens_per_second" in r]
tps = sorted(tps[len(tps) // 5:])  # past the first fifth (warm-up), median
print(f"| {sys.argv[2]} | {math.exp(valid):.2f} | {tps[len(tps) // 2]:,.0f} |")
PY
done
