#!/usr/bin/env bash
# One workload in attnkit and in PyTorch, same shapes and threads, in one run.
#
#   bash bench/compare.sh WORKLOAD [attnkit bench options...]
#   e.g. ROUNDS=5 bash bench/compare.sh mha-forward --threads 2 --runs 10
#
# Runs attnkit and its PyTorch peer alternately ROUNDS times (default 3), so that a burst
# of load on a shared machine hits both, and prints each side's median over all rounds
# (of the per-round medians) and the time ratio attnkit / PyTorch. Needs a release build
# and `pip install torch` (set PYTHON to its interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
ROUNDS=${ROUNDS:-3}
workload=$1
shift
cargo build --release --quiet
ours=()
theirs=()
for ((round = 0; round < ROUNDS; round++)); do
  one=$(./target/release/attnkit bench "$workload" "$@" --json)
  threads=$(echo "$one" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["threads"])')
  # The peer takes the same options; --threads defaults to what attnkit used.
  peer_args=("$@")
  if [[ " $* " != *" --threads "* ]]; then peer_args+=(--threads "$threads"); fi
  ours+=("$one")
  theirs+=("$("$PYTHON" bench/peer_pytorch.py "$workload" "${peer_args[@]}")")
done
printf '%s\n' "${ours[@]}" "${theirs[@]}"
"$PYTHON" - "${ours[@]}" "${theirs[@]}" <<'PY'
import json, statistics, sys
docs = [json.loads(x) for x in sys.argv[1:]]
n = len(docs) // 2
a, t = docs[:n], docs[n:]
ma = statistics.median(d["median_ms"] for d in a)
mt = statistics.median(d["median_ms"] for d in t)
rate = lambda ds, k: statistics.median(d[k] for d in ds) if k in ds[0] else None
extra = ""
for key, unit in (("gflops", "GFLOP/s"), ("gbps", "GB/s")):
    if rate(a, key) is not None and rate(t, key) is not None:
        extra = f", {rate(a, key):.1f} vs {rate(t, key):.1f} {unit}"
print(f"{a[0]['workload']}: attnkit {ma:.3f} ms, PyTorch {mt:.3f} ms, "
      f"ratio {ma / mt:.2f} ({a[0]['threads']} threads, medians of {n} alternating rounds{extra})")
PY
