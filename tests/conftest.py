"""Shared fixtures: the real packaged embedder and one llama.cpp server on the packaged GGUF, each started
once per test session, and the marker rule for the embedder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.generation.packaged import packaged_gguf_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def embedder():
    from rag.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


REAL_MODEL_FIXTURES = frozenset({"embedder"})
"""Fixtures that load a real model: every test using one is slow, whether or not it says so."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that load the real embedder `slow`, so `-m "not slow"` never loads a model."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# --- One real llama-cpp-python server on the packaged GGUF, shared by the modules that need it (slow) ---

MODEL_ALIAS = "packaged-qwen"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def gguf() -> Path:
    return packaged_gguf_path(Settings().model_cache_dir)


@pytest.fixture(scope="session")
def server_url(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on the packaged model (alias MODEL_ALIAS), started once per test session
    (test_generation_openai and test_ray_ingest share it) and stopped at the end."""
    pytest.importorskip("starlette_context", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}: see {log.name}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start within 180 s: see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
