#!/usr/bin/env bash
# Every benchmark of issue 6 in one command, each tfm figure beside its PyTorch peer's from the same run:
#   1. training tokens/s, GFLOP/s and peak RSS (small, seed-base, gpt2-small; float32 and bfloat16; PyTorch
#      float32), 1 and 2 threads: bench/compare_train.sh;
#   2. forward-pass inference (the seed Transformer, bench_torch.py --mode infer);
#   3. decoding with the KV cache: translation of test.tsv at beam 4 / batch 32, batch-1 lm-kjv, GPT-2 small
#      pp512 / tg128 (bench/peers/torch_decode.py);
#   4. causal attention forward + backward at 512-4,096 tokens, flash against dense (time, peak memory);
#   5. tfm serve under 1-64 concurrent clients (issue 15): bench/serve_bench.sh.
# Takes about an hour on the 2-core machine; run it on a quiet one.
#
#   bench/run_all.sh [ROUNDS=2]
# Needs: cmake --build build --target tfm_cli tfm_bench_train tfm_bench_decode tfm_bench_attention
# tfm_bench_serve_load
# (with -DTFM_BUILD_BENCH=ON), python3-torch, libopenblas0-openmp.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
P=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
  /usr/bin/python3)
PEERS=${TFM_PEERS:-../shared/peers}

echo "## Training"
for t in 2 1; do bench/compare_train.sh "$ROUNDS" "$t"; done

echo "## Forward pass (seed Transformer), tokens/s: tfm then PyTorch"
for t in 2 1; do
  for config in small seed-base; do
    echo "threads $t $config: tfm $(build/bench/tfm_bench_train --config $config --mode infer --threads $t |
      python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tok_per_s"]))') PyTorch $(
      OMP_NUM_THREADS=$t "${P[@]}" "$PEERS/bench_torch.py" --config $config --mode infer --threads $t |
        python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])["tok_per_s"]))')"
  done
done

echo "## Decoding with the KV cache"
cut -f1 ../shared/data/bible-en-es/test.tsv >/tmp/tfm-bench-test.en
for t in 2 1; do
  /usr/bin/time -f "tfm translate beam 4 batch 32, threads $t: %e s, %M KB" env OMP_NUM_THREADS=$t \
    build/tfm translate --model ../shared/models/mt-en-es --beam 4 --batch 32 </tmp/tfm-bench-test.en >/dev/null
  "${P[@]}" bench/peers/torch_decode.py translate --beam 4 --batch 32 --threads $t
  build/bench/tfm_bench_decode --threads $t kjv
  "${P[@]}" bench/peers/torch_decode.py kjv --threads $t
  build/bench/tfm_bench_decode --threads $t pp-tg --shape gpt2-small --repeat 2
  "${P[@]}" bench/peers/torch_decode.py gpt2-small --threads $t --repeat 2
done

echo "## Causal attention, 12 heads of 64, forward + backward"
for len in 512 1024 2048 4096; do
  for kernel in flash dense; do build/bench/tfm_bench_attention --len $len --kernel $kernel; done
done

echo "## tfm serve at 1-64 concurrent clients, beside the PyTorch peer serving one request at a time"
bench/serve_bench.sh build/serve_bench.jsonl

echo "## Data-parallel training: 1 process x 2 threads against 2 ranks x 1 thread (mpirun), and two namespaces"
if command -v mpirun >/dev/null; then
  bench/dist_train.sh "small seed-base" 30
  [ "$(id -u)" -eq 0 ] && bench/dist_two_hosts.sh small 30
fi
