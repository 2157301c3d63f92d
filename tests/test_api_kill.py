"""A real `rag serve` killed with SIGKILL while it indexes an accepted upload: once started again it
resumes the job, and the upload ends indexed (never lost, never silently dropped)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

RAG = [sys.executable, "-m", "rag"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """`rag serve` on 127.0.0.1 over one index and upload folder, started (and restarted) by the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAG_UPLOAD_DIR": str(root / "uploads"), "RAG_THREADS": "1"}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.root / "serve.log", "ab")  # noqa: SIM115  (closed with the process)
        self.process = subprocess.Popen(
            [*RAG, "serve", "--index", str(self.root / "index"), "--port", str(self.port)],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "serve.log").read_text()
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError("rag serve did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bread.txt").write_text(
        "Sourdough bread rises because wild yeast ferments the dough.\n"
    )
    ingest = subprocess.run(
        [*RAG, "ingest", "docs", "--index", "index"], cwd=tmp_path, capture_output=True, text=True
    )
    assert ingest.returncode == 0, ingest.stderr
    server = ServeProcess(tmp_path)
    yield server
    server.stop()


def long_report() -> bytes:
    """Text that takes the embedder many batches: hundreds of chunks of distinct sentences."""
    lines = [
        f"Survey note {n}: station {n % 97} logged {n * 7 % 1000} penguins near ridge {n % 13}."
        for n in range(3000)
    ]
    return ("# Penguin survey\n\n" + "\n\n".join(lines) + "\n").encode()


def test_an_upload_accepted_before_a_kill_ends_indexed(serve: ServeProcess) -> None:
    serve.start()
    files = [("files", ("survey.md", long_report())), ("files", ("note.txt", b"Glaciers calve icebergs."))]
    response = httpx.post(f"{serve.url}/api/documents", files=files, timeout=60)
    assert response.status_code == 202
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while True:
        job = httpx.get(f"{serve.url}/api/jobs/{job_id}", timeout=10).json()
        if job["status"] == "running" and job["chunks_embedded"] > 0:
            break
        assert job["status"] in ("queued", "running"), f"the job ended before the kill: {job}"
        assert time.monotonic() < deadline, "the job never started embedding"
        time.sleep(0.05)
    serve.kill()

    with sqlite3.connect(serve.root / "uploads" / ".jobs.sqlite") as db:
        (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert status == "running", "the killed server left the job unfinished, and on disk"

    serve.start()
    deadline = time.monotonic() + 600
    while True:
        job = httpx.get(f"{serve.url}/api/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("done", "failed"):
            break
        assert time.monotonic() < deadline, "the resumed job did not finish"
        time.sleep(0.5)
    assert job["status"] == "done" and job["attempts"] == 2
    assert [f["status"] for f in job["files"]] == ["indexed", "indexed"]
    titles = sorted(d["title"] for d in httpx.get(f"{serve.url}/api/documents", timeout=10).json())
    assert titles == ["Penguin survey", "bread", "note"]
    passages = httpx.post(
        f"{serve.url}/api/search", json={"query": "Which glaciers calve icebergs?", "k": 1}
    ).json()
    assert passages["passages"][0]["title"] == "note"
    check = subprocess.run(
        [*RAG, "check", "--index", str(serve.root / "index")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "The index is sound" in check.stdout
