#!/usr/bin/env bash
# Training throughput of tfm against the PyTorch peers, run alternately on the same machine: tfm float32,
# tfm bfloat16, PyTorch float32, then again (the machine's clock drifts; alternating keeps ratios fair).
# Configs: small and seed-base (the seed Transformer, ../shared/peers/bench_torch.py) and gpt2-small
# (GPT-2 124M, batch 4 x context 256, ../shared/peers/gpt2_torch.py). Prints per config the median
# tokens/s of each, the ratios to PyTorch, tfm's achieved GFLOP/s against the GEMM peak (250 GFLOP/s per
# core, oneDNN sgemm on this machine) and peak RSS.
#
#   bench/compare_train.sh [ROUNDS=3] [THREADS=2] [CONFIGS="small seed-base gpt2-small"]
# Needs: build/bench/tfm_bench_train, python3-torch and libopenblas0-openmp (the peers' fastest setup,
# see ../shared/peers/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
THREADS=${2:-2}
CONFIGS=${3:-small seed-base gpt2-small}
PEERS=${TFM_PEERS:-../shared/peers}
OUT=$(mktemp -d)
torch() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_NUM_THREADS="$THREADS" /usr/bin/python3 "$@"
}
for config in $CONFIGS; do
  steps=(--warmup 3 --steps 7)
  [[ $config == gpt2-small ]] && steps=(--warmup 2 --steps 5)
  for ((r = 0; r < ROUNDS; r++)); do
    for precision in float32 bfloat16; do
      build/bench/tfm_bench_train --config "$config" --threads "$THREADS" --precision "$precision" "${steps[@]}" \
        >>"$OUT/tfm-$precision-$config"
    done
    if [[ $config == gpt2-small ]]; then
      torch "$PEERS/gpt2_torch.py" --threads "$THREADS" --B 4 --T 256 --warmup 2 --steps 5 |
        sed -n 's/^RESULT .*tok_s=\([0-9.]*\) .*maxrss_GB=\([0-9.]*\).*/{"tok_per_s": \1, "peak_rss_MB": \2e3}/p' \
          >>"$OUT/torch-$config"
    else
      torch "$PEERS/bench_torch.py" --config "$config" --mode train --threads "$THREADS" >>"$OUT/torch-$config"
    fi
  done
done
python3 - "$OUT" "$ROUNDS" "$THREADS" "$CONFIGS" <<'PY'
import json, statistics, sys
out, rounds, threads, configs = sys.argv[1:]
peak = 250 * int(threads)
print("| config | threads | tfm f32 tok/s | tfm bf16 tok/s | PyTorch f32 tok/s | f32 ratio | bf16 ratio |"
      f" tfm f32 GFLOP/s (% of {peak}) | tfm bf16 GFLOP/s | tfm peak RSS MB (f32/bf16) | PyTorch peak RSS MB |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for config in configs.split():
    def load(name):
        return [json.loads(l) for l in open(f"{out}/{name}-{config}") if l.strip()]
    f, b, p = load("tfm-float32"), load("tfm-bfloat16"), load("torch")
    med = lambda rows, key: statistics.median(x[key] for x in rows)
    ft, bt, pt = med(f, "tok_per_s"), med(b, "tok_per_s"), med(p, "tok_per_s")
    fg, bg = med(f, "gflops"), med(b, "gflops")
    print(f"| {config} | {threads} | {ft:.0f} | {bt:.0f} | {pt:.0f} | {ft / pt:.2f}x | {bt / pt:.2f}x | "
          f"{fg:.0f} ({100 * fg / peak:.0f}%) | {bg:.0f} | {max(x['peak_rss_MB'] for x in f):.0f} / "
          f"{max(x['peak_rss_MB'] for x in b):.0f} | {max(x['peak_rss_MB'] for x in p):.0f} |")
print(f"(median of {rounds} alternating runs each)")
PY
