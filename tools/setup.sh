#!/usr/bin/env bash
# Installs what the build and the tests need beyond a Rust toolchain:
# - the rustfmt and clippy components;
# - cargo-fuzz, for the bounded fuzzing of the text parsers (fuzz/);
# - a Python virtual environment in .venv with onnx and onnxruntime
#   (tools/requirements-onnx.txt) for tools/onnx_check.py, the second runtime that
#   checks exported ONNX files.
#
# The PyTorch fixtures are committed (tools/fixtures/), so the tests need no PyTorch.
# Regenerating them or running tools/cross_check_forward.py needs
# `pip install torch numpy safetensors`, which is not part of CI (PyTorch's CUDA
# wheels are gigabytes).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "$PYTHON not found: install Python 3.9+" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-onnx.txt
