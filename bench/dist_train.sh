#!/usr/bin/env bash
# Data-parallel training on one machine (issue 16): `tfm train` on the bundled en-es corpus with the seed
# Transformer's shapes (seed-base: d_model 512, 8 heads, 6+6 layers, d_ff 2048, BPE 16,000; small: 256, 4,
# 3+3, 1024, 8,000), dropout 0.1, about 1,000 padded tokens per side per step, run as
#   1 process x 2 threads                      (the reference)
#   2 ranks x 1 thread, buckets of BUCKET_MB   (all-reduce overlapped with backward)
#   2 ranks x 1 thread, bucket_mb = 0          (one all-reduce after backward: its whole cost exposed)
#   2 ranks x 1 thread, ZeRO-1
# and prints per run the steady tokens/s (steps after the first log window), the step time, rank 0's wait
# for communication after backward per step, the bytes it all-reduced per step, and the share of the
# all-reduce hidden behind backward: 1 - wait(overlapped) / wait(bucket_mb = 0).
#
#   bench/dist_train.sh [CONFIGS="small seed-base"] [STEPS=40] [BUCKET_MB=25]
# Needs build/tfm built with MPI (libopenmpi-dev) and mpirun (openmpi-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS=${1:-small seed-base}
STEPS=${2:-40}
BUCKET_MB=${3:-25}
TFM=$PWD/build/tfm
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to core ${TFM_MPI_ARGS:-} -np 2)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

. bench/dist_lib.sh

for c in $CONFIGS; do
  read -r d heads layers ff vocab < <(shape "$c")
  # The first run trains the BPE tokenizer; the others read it.
  "$TFM" train --quiet --config "$(config "$c" "$c-1x2" 2 "" "tokenizer = \"bpe\"
vocab_size = $vocab")"
  tok="tokenizer_file = \"$OUT/$c-1x2/tokenizer.json\""
  "${MPIRUN[@]}" "$TFM" train --quiet --config "$(config "$c" "$c-2x1" 1 "bucket_mb = $BUCKET_MB" "$tok")"
  "${MPIRUN[@]}" "$TFM" train --quiet --config "$(config "$c" "$c-2x1-nooverlap" 1 "bucket_mb = 0" "$tok")" 2>/dev/null
  "${MPIRUN[@]}" "$TFM" train --quiet --config "$(config "$c" "$c-2x1-zero" 1 "zero = 1" "$tok")" 2>/dev/null
  for run in 1x2 2x1 2x1-nooverlap 2x1-zero; do
    echo "{\"config\": \"$c\", \"run\": \"$run\", \"result\": $(summary "$c-$run")}"
  done
done
