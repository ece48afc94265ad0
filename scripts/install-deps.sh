#!/usr/bin/env bash
# Installs the Debian 12 packages tfm needs to build and test (all from Debian; nothing else is downloaded).
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
PACKAGES=(
  build-essential cmake pkg-config
  libdnnl-dev            # GEMM (oneDNN)
  nlohmann-json3-dev libcli11-dev libfmt-dev libtomlplusplus-dev
  zlib1g-dev libicu-dev  # gzip corpora, Unicode categories
  libgtest-dev libbenchmark-dev
  libsentencepiece-dev sentencepiece  # SentencePiece tokenizers; the tests train models with spm_train
  libcpp-httplib-dev     # tfm serve's HTTP server
  libopenmpi-dev openmpi-bin  # data-parallel training: mpirun -np N tfm train (src/dist/)
  iproute2               # the two-host test: network namespaces joined by a veth pair
  libopenblas-dev        # only the GEMM benchmark links it, as a candidate to compare
  chromium               # the tests render tfm report / tfm attention pages headless
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
