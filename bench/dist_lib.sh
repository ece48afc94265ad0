# What bench/dist_train.sh and bench/dist_two_hosts.sh share: the configs of their runs (in $OUT, $STEPS
# steps) and the steady figures of a run. Sourced, not run.

shape() {  # d_model heads layers d_ff vocab
  case $1 in
    seed-base) echo "512 8 6 2048 16000" ;;
    small) echo "256 4 3 1024 8000" ;;
    *) echo "unknown config $1" >&2; exit 2 ;;
  esac
}

shape() {  # d_model heads layers d_ff vocab
  case $1 in
    seed-base) echo "512 8 6 2048 16000" ;;
    small) echo "256 4 3 1024 8000" ;;
    *) echo "unknown config $1" >&2; exit 2 ;;
  esac
}

# config NAME RUN_DIR THREADS TRAIN_EXTRA DATA_EXTRA
config() {
  read -r d heads layers ff vocab < <(shape "$1")
  cat >"$OUT/$2.toml" <<EOF
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
$5
max_tokens = 1024
[train]
max_steps = $STEPS
warmup_steps = 10
log_every = 10
checkpoint_every = 100000
threads = $3
out_dir = "$OUT/$2"
$4
EOF
  echo "$OUT/$2.toml"
}

# The steady figures of a run: mean over the log lines after the first.
summary() {
  python3 - "$OUT/$1/metrics.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l][1:]
mean = lambda k: sum(l.get(k, 0) for l in lines) / len(lines)
print(json.dumps({"tokens_per_second": round(mean("tokens_per_second")),
                  "step_seconds": round(mean("step_seconds"), 4),
                  "comm_wait_seconds": round(mean("comm_wait_seconds"), 4),
                  "comm_bytes": round(mean("comm_bytes"))}))
EOF
}

