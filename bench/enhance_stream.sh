#!/usr/bin/env bash
# Streams an hour of 16 kHz speech-in-noise through `attnkit enhance --stream` and
# prints what the stream reports: time per 10 ms block (median, p99, max), real-time
# factor, the state held at the start and at the end, and the process's peak memory at
# the start and the end.
#
#   bash bench/enhance_stream.sh [MODEL.safetensors ...]    (default: the built-in model)
#
# The hour is the held-out test pairs of `attnkit data prepare-speech` (DATA, default
# attnkit-data/speech) played one after another, repeated to 3,600 s. One core:
# the stream is one thread.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-attnkit-data/speech}"
BIN="${BIN:-target/release/attnkit}"
[ -x "$BIN" ] || cargo build --release
[ -d "$DATA/test/noisy" ] || { echo "error: no $DATA/test/noisy: run \`attnkit data prepare-speech --out $DATA\` first" >&2; exit 1; }
HOUR="$(mktemp -d)/hour.pcm"
python3 - "$DATA/test/noisy" "$HOUR" <<'PY'
import pathlib, sys, wave
files = sorted(pathlib.Path(sys.argv[1]).glob("*.wav"))
pcm = b"".join(wave.open(str(f)).readframes(10**9) for f in files)
need = 3600 * 16000 * 2
with open(sys.argv[2], "wb") as out:
    written = 0
    while written < need:
        chunk = pcm[: need - written]
        out.write(chunk)
        written += len(chunk)
PY
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(built-in)
for m in "${models[@]}"; do
  echo "== $m"
  if [ "$m" = built-in ]; then
    taskset -c 0 "$BIN" enhance --stream < "$HOUR" > /dev/null
  else
    taskset -c 0 "$BIN" enhance --stream --checkpoint "$m" < "$HOUR" > /dev/null
  fi
done
rm -f "$HOUR"
