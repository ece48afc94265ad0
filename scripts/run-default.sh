#!/usr/bin/env bash
# The main job: builds tfm, trains the default model (the seed Transformer on the bundled
# English-Spanish corpus, about 10 minutes on 2 cores), translates a few sentences with it, then translates
# the bundled test set and scores it with sacreBLEU-identical BLEU and chrF.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tfm_cli
./build/tfm train --out runs/default
printf '%s\n' "In the beginning God created the heavens and the earth." \
  "Jesus wept." "The Lord is my shepherd; I shall not want." |
  ./build/tfm translate --model runs/default
zcat data/bible-en-es/test.tsv.gz | cut -f1 | ./build/tfm translate --model runs/default >runs/default/test.es
./build/tfm bleu --hyp runs/default/test.es --ref data/bible-en-es/test.tsv.gz --ref-column 2
