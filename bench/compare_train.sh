#!/usr/bin/env bash
# Training (and inference) throughput of tfm against the PyTorch peer, run alternately on the same
# machine: tfm, torch, tfm, torch, ... (the machine's clock drifts; alternating keeps the ratio fair).
# Prints per config the median tokens/s of each, the ratio, tfm's achieved GFLOP/s and peak RSS.
#
#   bench/compare_train.sh [ROUNDS=3] [THREADS=2] [MODE=train]
# Needs: build/bench/tfm_bench_train, python3-torch and libopenblas0-openmp (the peer's fastest setup,
# see ../shared/peers/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
THREADS=${2:-2}
MODE=${3:-train}
PEERS=${TFM_PEERS:-../shared/peers}
OUT=$(mktemp -d)
for config in small seed-base; do
  for ((r = 0; r < ROUNDS; r++)); do
    build/bench/tfm_bench_train --config "$config" --mode "$MODE" --threads "$THREADS" >>"$OUT/tfm-$config"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      /usr/bin/python3 "$PEERS/bench_torch.py" --config "$config" --mode "$MODE" --threads "$THREADS" >>"$OUT/torch-$config"
  done
done
python3 - "$OUT" "$ROUNDS" "$THREADS" "$MODE" <<'PY'
import json, statistics, sys
out, rounds, threads, mode = sys.argv[1:]
print(f"| config | mode | threads | tfm tok/s | PyTorch tok/s | ratio | tfm GFLOP/s (% of 500) | tfm peak RSS MB | PyTorch peak RSS MB |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for config in ["small", "seed-base"]:
    t = [json.loads(l) for l in open(f"{out}/tfm-{config}")]
    p = [json.loads(l) for l in open(f"{out}/torch-{config}")]
    tt = statistics.median(x["tok_per_s"] for x in t)
    pt = statistics.median(x["tok_per_s"] for x in p)
    gf = statistics.median(x["gflops"] for x in t)
    print(f"| {config} | {mode} | {threads} | {tt:.0f} | {pt:.0f} | {tt/pt:.2f}x | {gf:.0f} ({gf/5:.0f}%) | "
          f"{max(x['peak_rss_MB'] for x in t):.0f} | {max(x['peak_rss_MB'] for x in p):.0f} |")
print(f"(median of {rounds} alternating runs each)")
PY
