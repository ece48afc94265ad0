#!/usr/bin/env bash
# The main job: builds tfm, trains the default model (the seed Transformer on the bundled
# English-Spanish corpus, a few minutes on 2 cores), then translates a few sentences with it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tfm_cli
./build/tfm train --out runs/default
printf '%s\n' "In the beginning God created the heavens and the earth." \
  "Jesus wept." "The Lord is my shepherd; I shall not want." |
  ./build/tfm translate --model runs/default
