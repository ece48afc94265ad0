#!/usr/bin/env bash
# Which position encodings extrapolate? The decoder-only model of recipes/lm-kjv-tiny.toml (d_model 128,
# 4 layers, RMSNorm, SwiGLU) trained on the bundled KJV text with a context of 256 tokens (STEPS steps of
# 4,096 tokens), once per position encoding (sinusoidal, learned, RoPE, ALiBi), same seed and data; then
# the perplexity of data/kjv/valid.txt.gz in non-overlapping windows of 256, 512 and 1,024 tokens
# (`tfm perplexity --extrapolate`: positions past the trained 256; learned positions have no row there).
#
#   bench/position_extrapolation.sh [OUT=runs/extrapolation] [STEPS=1000] [THREADS=2]
# Runs already in OUT (a finished checkpoint) are evaluated, not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/extrapolation}
STEPS=${2:-1000}
THREADS=${3:-2}
TFM=${TFM:-build/tfm}
mkdir -p "$OUT"
for p in sinusoidal learned rope alibi; do
  if ! grep -qs "\"step\":$STEPS," "$OUT/$p/metrics.jsonl"; then
    sed -e "s/^max_len = .*/max_len = 256/" -e "s/^positions = .*/positions = \"$p\"/" \
      -e "s/^max_steps = .*/max_steps = $STEPS/" -e "s/^eval_every = .*/eval_every = $STEPS/" \
      -e "s/^checkpoint_every = .*/checkpoint_every = $STEPS/" -e "s|^out_dir = .*|out_dir = \"$OUT/$p\"\nthreads = $THREADS|" \
      recipes/lm-kjv-tiny.toml >"$OUT/$p.toml"
    "$TFM" train --config "$OUT/$p.toml" --quiet >"$OUT/$p.log" 2>&1
  fi
done
printf '| positions | ppl @ 256 | ppl @ 512 | ppl @ 1024 |\n|---|---:|---:|---:|\n'
for p in sinusoidal learned rope alibi; do
  row="| $p"
  for ctx in 256 512 1024; do
    if ppl=$("$TFM" perplexity --model "$OUT/$p" --file data/kjv/valid.txt.gz --context $ctx --extrapolate 2>/dev/null); then
      row+=" | $(python3 -c 'import json,sys; print("%.2f" % json.loads(sys.argv[1])["perplexity"])' "$ppl")"
    else
      row+=" | not defined"
    fi
  done
  echo "$row |"
done
