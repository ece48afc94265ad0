#!/usr/bin/env bash
# Reduced precision against float32 on the same training run: the default model (the seed Transformer,
# d_model 256, 3+3 layers, batches of 4,096 tokens: the `small` shape) on the bundled en-es corpus for
# STEPS steps, with train.precision = "float32", "bfloat16", "float16" (emulated, dynamic loss scaling)
# and "float16" without loss scaling (scale fixed at 1), same seed and batches. Prints the training loss
# of each averaged over windows of 50 steps, its relative difference from float32, and each run's
# validation loss, wall time and tokens/s.
#
#   bench/precision_curves.sh [STEPS=500] [THREADS=2]
#   VARIANTS="float32 float16" bench/precision_curves.sh    # a subset (float32 is the baseline: keep it)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-500}
THREADS=${2:-2}
OUT=$(mktemp -d)
declare -A EXTRA=(
  [float32]='precision = "float32"'
  [bfloat16]='precision = "bfloat16"'
  [float16]='precision = "float16"'
  [float16-unscaled]=$'precision = "float16"\nloss_scale = 1\nloss_scale_growth_interval = 1000000000'
)
VARIANTS=${VARIANTS:-"float32 bfloat16 float16 float16-unscaled"}
for v in $VARIANTS; do
  cat >"$OUT/$v.toml" <<TOML
[train]
${EXTRA[$v]}
max_steps = $STEPS
threads = $THREADS
log_every = 10
eval_every = $STEPS
checkpoint_every = $STEPS
eval_bleu = false
best_metric = "none"
TOML
  start=$(date +%s%N)
  build/tfm train --config "$OUT/$v.toml" --out "$OUT/$v" --quiet >/dev/null
  echo $((($(date +%s%N) - start) / 1000000)) >"$OUT/$v.ms"
done
python3 - "$OUT" "$STEPS" $VARIANTS <<'PY'
import json, sys
out, steps, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def curve(p):
    rows = [json.loads(l) for l in open(f"{out}/{p}/metrics.jsonl")]
    return ({r["step"]: r for r in rows if "loss" in r}, [r for r in rows if "valid_loss" in r],
            sum(1 for r in rows if "loss_scale_overflow" in r))
runs = {n: curve(n) for n in names}
f32 = runs["float32"][0]
print("| steps | " + " | ".join(names) + " |")
print("| --- |" + " ---: |" * len(names))
worst = {n: 0.0 for n in names}
for end in range(50, steps + 1, 50):
    cells = []
    window = [s for s in f32 if end - 50 < s <= end]
    a = sum(f32[s]["loss"] for s in window) / len(window)
    for n in names:
        c = runs[n][0]
        b = sum(c[s]["loss"] for s in window) / len(window)
        worst[n] = max(worst[n], abs(b - a) / a)
        cells.append(f"{b:.4f}" if n == "float32" else f"{b:.4f} ({100 * (b - a) / a:+.2f}%)")
    print(f"| {end - 49}-{end} | " + " | ".join(cells) + " |")
for n in names:
    c, v, overflows = runs[n]
    secs = float(open(f"{out}/{n}.ms").read()) / 1000
    tps = sorted(r["tokens_per_second"] for r in c.values())
    scale = f", loss scale at the end {c[max(c)]['loss_scale']:g}, {overflows} overflow steps skipped" \
        if "loss_scale" in c[max(c)] else ""
    valid = f"validation loss {v[-1]['valid_loss']:.4f}, " if v else ""
    print(f"{n}: {valid}{secs:.0f} s wall, median {tps[len(tps) // 2]:.0f} tokens/s, "
          f"largest windowed difference from float32 {100 * worst[n]:.2f}%{scale}")
PY
