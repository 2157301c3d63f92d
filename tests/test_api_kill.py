"""A real `rag serve` killed with SIGKILL while it indexes an accepted upload: once started again it
resumes the job, and the upload ends indexed (never lost, never silently dropped)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evals.kill_campaign import RAG, Server

pytestmark = pytest.mark.slow


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bread.txt").write_text(
        "Sourdough bread rises because wild yeast ferments the dough.\n"
    )
    ingest = subprocess.run(
        [*RAG, "ingest", "docs", "--index", "index"], cwd=tmp_path, capture_output=True, text=True
    )
    assert ingest.returncode == 0, ingest.stderr
    server = Server(tmp_path)
    yield server
    server.stop()


def long_report() -> bytes:
    """Text that takes the embedder many batches: hundreds of chunks of distinct sentences."""
    lines = [
        f"Survey note {n}: station {n % 97} logged {n * 7 % 1000} penguins near ridge {n % 13}."
        for n in range(3000)
    ]
    return ("# Penguin survey\n\n" + "\n\n".join(lines) + "\n").encode()


def test_an_upload_accepted_before_a_kill_ends_indexed(serve: Server) -> None:
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
    assert serve.process is not None and serve.process.returncode == -signal.SIGKILL

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
