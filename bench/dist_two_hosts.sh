#!/usr/bin/env bash
# Data-parallel training between two "hosts" on this machine (issue 16): two network namespaces joined by a
# veth pair, one rank in each, Open MPI's TCP transport between their addresses (an agent that enters the
# namespace stands in for ssh), against the same run's 2 ranks over shared memory. Prints the steady tokens/s
# of both and rank 0's wait for communication per step. Needs root (ip netns), build/tfm with MPI, mpirun.
#
#   sudo bench/dist_two_hosts.sh [CONFIG=small] [STEPS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-small}
STEPS=${2:-30}
TFM=$PWD/build/tfm
OUT=$(mktemp -d)
A=tfm-bench-$$-a B=tfm-bench-$$-b NET=10.214.$(($$ % 200 + 16))
cleanup() {
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip link add "tba$$" type veth peer name "tbb$$"
ip link set "tba$$" netns "$A"
ip link set "tbb$$" netns "$B"
ip -n "$A" addr add "$NET.1/24" dev "tba$$"
ip -n "$B" addr add "$NET.2/24" dev "tbb$$"
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set "tba$$" up
ip -n "$B" link set "tbb$$" up
cat >"$OUT/agent.sh" <<EOF
#!/bin/sh
host=\$1; shift
case \$host in $NET.1) ns=$A;; $NET.2) ns=$B;; *) exit 1;; esac
exec ip netns exec \$ns sh -c "\$*"
EOF
chmod +x "$OUT/agent.sh"

. bench/dist_lib.sh
read -r d heads layers ff vocab < <(shape "$CONFIG")

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --allow-run-as-root --bind-to core -np 2 "$TFM" train --quiet \
  --config "$(config "$CONFIG" shm 1 "" "tokenizer = \"bpe\"
vocab_size = $vocab")"
ip netns exec "$A" mpirun --allow-run-as-root --bind-to core -np 2 -H "$NET.1,$NET.2" \
  --mca plm_rsh_agent "$OUT/agent.sh" --mca plm_rsh_no_tree_spawn 1 --mca btl tcp,self \
  --mca btl_tcp_if_include "$NET.0/24" --mca oob_tcp_if_include "$NET.0/24" \
  -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
  "$TFM" train --quiet --config "$(config "$CONFIG" tcp 1 "" "tokenizer_file = \"$OUT/shm/tokenizer.json\"")"
echo "{\"config\": \"$CONFIG\", \"run\": \"2x1 shared memory\", \"result\": $(summary shm)}"
echo "{\"config\": \"$CONFIG\", \"run\": \"2x1 two namespaces, TCP over veth\", \"result\": $(summary tcp)}"
