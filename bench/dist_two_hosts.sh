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

case $CONFIG in
  seed-base) read -r d heads layers ff vocab <<<"512 8 6 2048 16000" ;;
  small) read -r d heads layers ff vocab <<<"256 4 3 1024 8000" ;;
  *) echo "unknown config $CONFIG" >&2; exit 2 ;;
esac
config() {  # RUN_DIR DATA_EXTRA
  cat >"$OUT/$1.toml" <<EOF
[model]
d_model = $d
heads = $heads
d_ff = $ff
encoder_layers = $layers
decoder_layers = $layers
max_len = 128
[data]
train = "$PWD/data/bible-en-es/train.tsv.gz"
valid = ""
max_tokens = 1024
$2
[train]
max_steps = $STEPS
warmup_steps = 10
log_every = 10
checkpoint_every = 100000
threads = 1
out_dir = "$OUT/$1"
EOF
  echo "$OUT/$1.toml"
}
summary() {
  python3 - "$OUT/$1/metrics.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l][1:]
mean = lambda k: sum(l.get(k, 0) for l in lines) / len(lines)
print(json.dumps({"tokens_per_second": round(mean("tokens_per_second")), "step_seconds": round(mean("step_seconds"), 4),
                  "comm_wait_seconds": round(mean("comm_wait_seconds"), 4), "comm_bytes": round(mean("comm_bytes"))}))
EOF
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --allow-run-as-root --bind-to core -np 2 "$TFM" train --quiet \
  --config "$(config shm "tokenizer = \"bpe\"
vocab_size = $vocab")"
ip netns exec "$A" mpirun --allow-run-as-root --bind-to core -np 2 -H "$NET.1,$NET.2" \
  --mca plm_rsh_agent "$OUT/agent.sh" --mca plm_rsh_no_tree_spawn 1 --mca btl tcp,self \
  --mca btl_tcp_if_include "$NET.0/24" --mca oob_tcp_if_include "$NET.0/24" \
  -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
  "$TFM" train --quiet --config "$(config tcp "tokenizer_file = \"$OUT/shm/tokenizer.json\"")"
echo "{\"config\": \"$CONFIG\", \"run\": \"2x1 shared memory\", \"result\": $(summary shm)}"
echo "{\"config\": \"$CONFIG\", \"run\": \"2x1 two namespaces, TCP over veth\", \"result\": $(summary tcp)}"
