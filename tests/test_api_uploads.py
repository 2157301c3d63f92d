"""Uploads through the API: names never collide, every accepted upload is recorded before the answer and
survives a restart, and failed uploads can be listed and removed (fast: fake embedder)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.api.jobs import FileStatus, IngestJob, JobStore
from rag.api.uploads import save_upload
from rag.assistant import Assistant
from rag.config import Settings


def error_of(response, status: int, kind: str) -> str:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == kind
    return response.json()["error"]["message"]


class Server:
    """An app over one index and upload folder; `restart()` builds a new one over the same folders."""

    def __init__(self, root: Path, **settings: object) -> None:
        self.root = root
        self.settings = Settings(index_dir=root / "index", upload_dir=root / "uploads", **settings)
        self.client = self.start()

    def start(self) -> TestClient:
        assistant = Assistant(self.settings, embedder=BagOfWordsEmbedder())
        return TestClient(create_app(assistant))

    def restart(self) -> TestClient:
        self.client = self.start()
        return self.client

    @property
    def store(self) -> JobStore:
        return JobStore(self.settings.upload_dir / ".jobs.sqlite")

    def wait(self, job_id: str, client: TestClient | None = None) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = (client or self.client).get(f"/api/jobs/{job_id}").json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.02)
        raise AssertionError("the job did not finish")

    def upload(self, *files: tuple[str, bytes]) -> dict:
        response = self.client.post("/api/documents", files=[("files", f) for f in files])
        assert response.status_code == 202, response.text
        return self.wait(response.json()["id"])


@pytest.fixture()
def server(tmp_path: Path) -> Server:
    return Server(tmp_path)


def saved_files(server: Server) -> list[Path]:
    return sorted(p for p in server.settings.upload_dir.rglob("*") if p.is_file() and p.name[0] != ".")


# Identity


def test_files_of_the_same_name_never_replace_each_other(server: Server) -> None:
    job = server.upload(
        ("dup.txt", b"Bread rises because of yeast."),
        ("dup.txt", b"Honey comes from bees."),
        ("team-a/report.txt", b"Lava flows from the volcano."),
        ("team-b/report.txt", b"Ice covers the volcano."),
    )
    assert [f["status"] for f in job["files"]] == ["indexed"] * 4
    paths = [f["path"] for f in job["files"]]
    assert len(set(paths)) == 4 and all(Path(p).name in ("dup.txt", "report.txt") for p in paths)
    assert sorted(p.read_bytes() for p in saved_files(server)) == sorted(
        [
            b"Bread rises because of yeast.",
            b"Honey comes from bees.",
            b"Lava flows from the volcano.",
            b"Ice covers the volcano.",
        ]
    )
    documents = server.client.get("/api/documents").json()
    assert sorted(d["title"] for d in documents) == ["dup", "dup", "report", "report"], "the user's names"
    top = server.client.post("/api/search", json={"query": "honey bee", "k": 1}).json()["passages"][0]
    assert top["text"] == "Honey comes from bees."


def test_the_same_file_uploaded_again_is_unchanged(server: Server) -> None:
    first = server.upload(("bread.txt", b"Bread rises because of yeast."))
    again = server.upload(("bread.txt", b"Bread rises because of yeast."))
    assert first["files"][0]["status"] == "indexed" and again["files"][0]["status"] == "unchanged"
    assert len(server.client.get("/api/documents").json()) == 1 and len(saved_files(server)) == 1


def test_a_saved_upload_is_named_by_its_content(tmp_path: Path) -> None:
    one = save_upload(io.BytesIO(b"one"), "../a.md", tmp_path, 100)
    two = save_upload(io.BytesIO(b"two"), "a.md", tmp_path, 100)
    assert one.name == two.name == "a.md" and one.parent != two.parent
    assert one.parent.parent == two.parent.parent == tmp_path.resolve()
    assert save_upload(io.BytesIO(b"one"), "a.md", tmp_path, 100) == one
    assert not [p for p in tmp_path.rglob(".upload-*")], "no temporary file left"


# Durable jobs


def test_a_job_is_recorded_before_the_upload_is_acknowledged(server: Server) -> None:
    response = server.client.post("/api/documents", files=[("files", ("bread.txt", b"Bread and yeast."))])
    recorded = server.store.load(response.json()["id"])
    assert recorded is not None and recorded.files[0].name == "bread.txt"
    server.wait(response.json()["id"])


def test_jobs_survive_a_restart(server: Server) -> None:
    job = server.upload(("bread.txt", b"Bread and yeast."))
    client = server.restart()
    assert client.get(f"/api/jobs/{job['id']}").json() == job
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"]]


def unfinished_job(server: Server, attempts: int, status: str = "running") -> IngestJob:
    """What a server killed while indexing leaves behind: the saved file and its job, not finished."""
    path = save_upload(io.BytesIO(b"Honey comes from bees."), "honey.txt", server.settings.upload_dir, 10**6)
    job = IngestJob(
        id="j1",
        status=status,
        files=[FileStatus("honey.txt", "saved", path=str(path))],
        files_total=1,
        attempts=attempts,
    )
    server.store.save(job)
    return job


def test_a_job_left_unfinished_resumes_when_the_server_starts(server: Server) -> None:
    unfinished_job(server, attempts=1)
    with server.restart() as client:
        job = server.wait("j1", client)
        assert job["status"] == "done" and job["files"][0]["status"] == "indexed" and job["attempts"] == 2
        assert [d["title"] for d in client.get("/api/documents").json()] == ["honey"]


def test_a_job_the_server_stopped_on_too_often_fails_visibly(server: Server) -> None:
    unfinished_job(server, attempts=3)
    with server.restart() as client:
        job = client.get("/api/jobs/j1").json()
        assert job["status"] == "failed" and "upload_resume_attempts" in job["error"]
        assert job["files"][0]["status"] == "failed"
        assert [j["id"] for j in client.get("/api/jobs", params={"failed": True}).json()] == ["j1"]


def test_failed_uploads_are_listed_and_removed(server: Server) -> None:
    job = server.upload(("broken.pdf", b"%PDF-1.4 not really a PDF"), ("bread.txt", b"Bread and yeast."))
    statuses = {f["name"]: f["status"] for f in job["files"]}
    assert statuses == {"broken.pdf": "failed", "bread.txt": "indexed"}
    server.upload(("honey.txt", b"Honey and bees."))
    failed = server.client.get("/api/jobs", params={"failed": True}).json()
    assert [j["id"] for j in failed] == [job["id"]]
    assert len(server.client.get("/api/jobs").json()) == 2

    removed = server.client.delete(f"/api/jobs/{job['id']}")
    assert removed.status_code == 200
    broken = next(f["path"] for f in job["files"] if f["name"] == "broken.pdf")
    assert removed.json() == {"id": job["id"], "deleted": [broken]}
    assert not Path(broken).exists() and [p.name for p in saved_files(server)] == ["bread.txt", "honey.txt"]
    assert len(server.client.get("/api/documents").json()) == 2, "indexed files stay"
    error_of(server.client.get(f"/api/jobs/{job['id']}"), 404, "JobNotFoundError")
    error_of(server.client.delete(f"/api/jobs/{job['id']}"), 404, "JobNotFoundError")


def test_an_unfinished_job_cannot_be_removed(server: Server) -> None:
    unfinished_job(server, attempts=0, status="queued")
    assert "finished" in error_of(server.client.delete("/api/jobs/j1"), 409, "JobRunningError")


def test_finished_jobs_without_failures_are_pruned(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for n in range(5):
        store.save(IngestJob(id=f"ok{n}", status="done", created=n))
    store.save(IngestJob(id="bad", status="done", created=-1, files=[FileStatus("x.pdf", "failed")]))
    store.prune(keep=2)
    assert [job.id for job in store.jobs()] == ["ok4", "ok3", "bad"]
