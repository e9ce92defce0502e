#!/usr/bin/env bash
# Creates .venv-speech, a Python virtual environment with tools/requirements-speech.txt:
# PyPI `av` (decodes the G.722, Vorbis and GSM recordings for tools/prepare_speech.py)
# and numpy; scipy, pesq, pystoi and pyrnnoise for tools/enhance_check.py (RNNoise as a
# peer, the reference PESQ and STOI). `attnkit data prepare-speech` runs this when
# .venv-speech is missing or lacks a package. PYTHON=... picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found: install Python 3.11+" >&2; exit 1; }
if [ ! -x .venv-speech/bin/python ]; then
  echo "creating .venv-speech with $("$PYTHON" --version 2>&1) ..." >&2
  if ! "$PYTHON" -m venv .venv-speech; then
    rm -rf .venv-speech
    echo "error: \`$PYTHON -m venv\` failed (on Debian and Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
echo "installing tools/requirements-speech.txt into .venv-speech (about 150 MB the first time) ..." >&2
.venv-speech/bin/python -m pip install --disable-pip-version-check --progress-bar on \
  -r tools/requirements-speech.txt
