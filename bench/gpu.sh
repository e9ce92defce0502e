#!/usr/bin/env bash
# The benchmarks on a GPU, against the CPU backend of the same machine, in a few minutes:
#
#   bash bench/gpu.sh                      # CUDA GPU 0 (a build with --features cuda)
#   FEATURE=wgpu DEVICE=wgpu bash bench/gpu.sh
#
# Builds the CLI with the backend's feature, checks the PyTorch fixtures on the device
# (`attnkit forward --device`, the GPU test of tests/forward_cli.rs), then times each
# Burn workload of `attnkit bench` on the device and on `cpu` (medians of RUNS runs,
# default 10) and a short counting run on both. Prints a table with the ratio
# cpu / device and keeps every JSON line in attnkit-out/bench-gpu/ (OUT=...).
# Record what it prints in docs/performance.md with the machine's GPU and CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURE=${FEATURE:-cuda}
DEVICE=${DEVICE:-cuda:0}
RUNS=${RUNS:-10}
OUT=${OUT:-attnkit-out/bench-gpu}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
echo "== build with --features $FEATURE" >&2
cargo build --release -p attnkit-cli --features "$FEATURE"
bin=target/release/attnkit
echo "== the fixtures on $DEVICE" >&2
ATTNKIT_TEST_DEVICE="$DEVICE" cargo test --release -p attnkit-cli --features "$FEATURE" \
  --test forward_cli gpu_device
lines="$OUT/bench.jsonl"
: > "$lines"
for workload in gemm mha-forward mha-train-step aaren-parallel aaren-train-step \
  aaren-scan-train-step bigru-train-step bilstm-train-step count-train; do
  for device in "$DEVICE" cpu; do
    echo "== $workload on $device" >&2
    "$bin" bench "$workload" --runs "$RUNS" --device "$device" --json | tee -a "$lines"
  done
done
echo "== train count, 1000 steps, on $DEVICE and cpu" >&2
for device in "$DEVICE" cpu; do
  "$bin" train count --steps 1000 --log-every 500 --quiet --device "$device" \
    --out "$OUT/count-$device" --summary "$OUT/count-$device.json" | tail -1
done
"$PYTHON" - "$lines" "$DEVICE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gpu = sys.argv[2]
by = {}
for r in rows:
    by.setdefault(r["workload"], {})[r["device"]] = r["median_ms"]
print(f"| workload | {gpu} ms | cpu ms | cpu / {gpu} |")
print("| --- | ---: | ---: | ---: |")
for w, d in by.items():
    g, c = d.get(gpu), d.get("cpu")
    if g and c:
        print(f"| {w} | {g:.3f} | {c:.3f} | {c / g:.1f}× |")
PY
