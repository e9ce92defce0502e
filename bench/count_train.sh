#!/usr/bin/env bash
# Training speed of the counting task: attnkit vs PyTorch, same machine, same threads.
#
#   bash bench/count_train.sh [THREADS] [STEPS] [RUNS]
#
# Runs each side RUNS times (default 3) and prints the median steps/s of each and their
# ratio. attnkit's thread pool is pinned with RAYON_NUM_THREADS; PyTorch's with
# torch.set_num_threads. Needs `pip install torch` (the peer) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
STEPS=${2:-3000}
RUNS=${3:-3}
PYTHON=${PYTHON:-python3}
cargo build --release --quiet
tmp=$(mktemp -d)
for i in $(seq "$RUNS"); do
  RAYON_NUM_THREADS=$THREADS ./target/release/attnkit train count --quiet --steps "$STEPS" \
    --log-every 250 --eval-sequences 1000 --out "$tmp/a$i" --summary "$tmp/a$i.json" > /dev/null
  "$PYTHON" bench/count_train_pytorch.py --threads "$THREADS" --steps "$STEPS" > "$tmp/t$i.json"
done
"$PYTHON" - "$tmp" "$RUNS" "$THREADS" "$STEPS" <<'PY'
import json, statistics, sys
tmp, runs, threads, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
a = [json.load(open(f"{tmp}/a{i}.json")) for i in range(1, runs + 1)]
t = [json.load(open(f"{tmp}/t{i}.json")) for i in range(1, runs + 1)]
a_sps = statistics.median(r["steps_this_run"] / r["train_seconds"] for r in a)
t_sps = statistics.median(r["steps_per_second"] for r in t)
print(json.dumps({
    "threads": int(threads), "steps": int(steps), "runs": runs,
    "attnkit_steps_per_second": a_sps, "pytorch_steps_per_second": t_sps,
    "time_ratio_attnkit_over_pytorch": t_sps / a_sps,
    "attnkit_first_step_99": [r["first_step_val_accuracy_99"] for r in a],
    "pytorch_first_step_99": [r["first_step_val_accuracy_99"] for r in t],
    "pytorch": t[0]["framework"],
}, indent=2))
PY
