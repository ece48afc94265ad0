#!/usr/bin/env bash
# Mixed precision against float32 on the same training run: the default model (the seed Transformer,
# d_model 256, 3+3 layers, batches of 4,096 tokens: the `small` shape) on the bundled en-es corpus for
# STEPS steps, once with train.precision = "float32" and once with "bfloat16", same seed and batches.
# Prints the training loss of both averaged over windows of 50 steps, their relative difference, and
# each run's wall time and tokens/s.
#
#   bench/precision_curves.sh [STEPS=500] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-500}
THREADS=${2:-2}
OUT=$(mktemp -d)
for precision in float32 bfloat16; do
  cat >"$OUT/$precision.toml" <<TOML
[train]
precision = "$precision"
max_steps = $STEPS
threads = $THREADS
log_every = 10
eval_every = $STEPS
checkpoint_every = $STEPS
eval_bleu = false
best_metric = "none"
TOML
  start=$(date +%s%N)
  build/tfm train --config "$OUT/$precision.toml" --out "$OUT/$precision" --quiet >/dev/null
  echo $((($(date +%s%N) - start) / 1000000)) >"$OUT/$precision.ms"
done
python3 - "$OUT" "$STEPS" <<'PY'
import json, sys
out, steps = sys.argv[1], int(sys.argv[2])
def curve(p):
    rows = [json.loads(l) for l in open(f"{out}/{p}/metrics.jsonl")]
    return {r["step"]: r for r in rows if "loss" in r}, [r for r in rows if "valid_loss" in r]
f32, f32v = curve("float32")
b16, b16v = curve("bfloat16")
print("| steps | float32 loss | bfloat16 loss | difference |")
print("| --- | ---: | ---: | ---: |")
worst = 0.0
for end in range(50, steps + 1, 50):
    window = [s for s in f32 if end - 50 < s <= end and s in b16]
    a = sum(f32[s]["loss"] for s in window) / len(window)
    b = sum(b16[s]["loss"] for s in window) / len(window)
    worst = max(worst, abs(b - a) / a)
    print(f"| {end - 49}-{end} | {a:.4f} | {b:.4f} | {100 * (b - a) / a:+.2f}% |")
for name, v in (("float32", f32v), ("bfloat16", b16v)):
    if v:
        print(f"{name}: validation loss {v[-1]['valid_loss']:.4f}")
for name, c in (("float32", f32), ("bfloat16", b16)):
    secs = float(open(f"{out}/{name}.ms").read()) / 1000
    tps = sorted(r["tokens_per_second"] for r in c.values())
    print(f"{name}: {secs:.0f} s wall, median {tps[len(tps) // 2]:.0f} tokens/s")
print(f"largest windowed difference: {100 * worst:.2f}%")
PY
