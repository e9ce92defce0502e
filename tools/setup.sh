#!/usr/bin/env bash
# Installs what the build and the tests need beyond a Rust toolchain.
#
# Today that is only the rustfmt and clippy components: the PyTorch fixtures are
# committed (tools/fixtures/), so the tests need no Python packages. Regenerating the
# fixtures or running tools/cross_check_forward.py needs `pip install torch numpy
# safetensors`, which is not part of CI (PyTorch's CUDA wheels are gigabytes).
set -euo pipefail
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
