#!/usr/bin/env bash
# One workload in attnkit and in PyTorch, same shapes and threads, in one run.
#
#   bash bench/compare.sh WORKLOAD [attnkit bench options...]
#   e.g. bash bench/compare.sh mha-forward --threads 2 --runs 10
#
# Prints both JSON objects and the time ratio attnkit / PyTorch (medians). Needs a
# release build and `pip install torch` (set PYTHON to its interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
workload=$1
shift
cargo build --release --quiet
ours=$(./target/release/attnkit bench "$workload" "$@" --json)
threads=$(echo "$ours" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["threads"])')
# The peer takes the same options; --threads defaults to what attnkit used.
peer_args=("$@")
if [[ " $* " != *" --threads "* ]]; then peer_args+=(--threads "$threads"); fi
theirs=$("$PYTHON" bench/peer_pytorch.py "$workload" "${peer_args[@]}")
echo "$ours"
echo "$theirs"
"$PYTHON" - "$ours" "$theirs" <<'PY'
import json, sys
a, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{a['workload']}: attnkit {a['median_ms']:.3f} ms, PyTorch {t['median_ms']:.3f} ms, "
      f"ratio {a['median_ms'] / t['median_ms']:.2f} ({a['threads']} threads)")
PY
