#!/usr/bin/env bash
# Builds tfm and runs every test: the whole suite on the Release build, then the unit tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer. Tests read ../shared (fixtures, data, models).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTFM_SANITIZE=ON -DTFM_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$JOBS" --target tfm_unit_tests
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan -L unit --output-on-failure -j "$JOBS"
