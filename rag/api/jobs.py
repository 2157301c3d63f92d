"""Ingest jobs of uploaded files: recorded in SQLite before an upload is acknowledged, run one at a time
on a worker thread, resumed (or failed, visibly) when the server starts again after a crash."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rag.api.uploads import delete_upload
from rag.assistant import Assistant
from rag.errors import RagError
from rag.ingest import display_path

T = TypeVar("T")
UNFINISHED = ("queued", "running")


class JobNotFoundError(RagError):
    """No ingest job with that id."""

    status_code = 404


class JobRunningError(RagError):
    """The job has not finished; it can be removed once it has."""

    status_code = 409


@dataclass
class FileStatus:
    """An uploaded file: `saved`, then `indexed`, `unchanged` or `failed`; or `rejected` at upload.

    `path` is where it was saved (absolute; shown relative to the working folder when inside it).
    """

    name: str
    status: str
    error: str | None = None
    path: str | None = None


@dataclass
class IngestJob:
    id: str
    status: str = "queued"
    files: list[FileStatus] = field(default_factory=list)
    files_total: int = 0
    files_done: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    attempts: int = 0

    @property
    def has_failures(self) -> bool:
        return any(f.status == "failed" for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it (`JobModel`)."""
        shown = asdict(self)
        for item in shown["files"]:
            if item["path"]:
                item["path"] = display_path(Path(item["path"]))
        return shown

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IngestJob:
        files = [FileStatus(**item) for item in record.pop("files")]
        return cls(files=files, **record)


class JobStore:
    """The ingest jobs in one SQLite file, each saved as JSON at every change of status (synchronously:
    a saved job survives a crash of the process or of the machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, "
                "status TEXT NOT NULL, failed INTEGER NOT NULL, record TEXT NOT NULL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute("PRAGMA synchronous=FULL")
            yield db

    def save(self, job: IngestJob) -> None:
        record = json.dumps(asdict(job), ensure_ascii=False)
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)",
                (job.id, job.created, job.status, int(job.has_failures), record),
            )

    def load(self, job_id: str) -> IngestJob | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return IngestJob.from_record(json.loads(row[0])) if row else None

    def jobs(self, *, failed_only: bool = False, statuses: tuple[str, ...] = ()) -> list[IngestJob]:
        """Jobs newest first: all, those with a failed file, or those in the given statuses."""
        query, parameters = "SELECT record FROM jobs WHERE 1", []
        if failed_only:
            query += " AND failed"
        if statuses:
            query += f" AND status IN ({', '.join('?' * len(statuses))})"
            parameters.extend(statuses)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC", parameters).fetchall()
        return [IngestJob.from_record(json.loads(row[0])) for row in rows]

    def delete(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def prune(self, keep: int) -> None:
        """Forget finished jobs without failures beyond the newest `keep` (failed ones wait for removal)."""
        with self._connect() as db:
            db.execute(
                "DELETE FROM jobs WHERE status = 'done' AND NOT failed AND id NOT IN "
                "(SELECT id FROM jobs ORDER BY created DESC LIMIT ?)",
                (keep,),
            )


class IngestJobs:
    """Runs uploads' ingests one at a time on a worker thread; every job is in the `JobStore`.

    The job running now is also held in memory, where its progress counters move.
    """

    def __init__(
        self, assistant: Assistant, store: JobStore, *, resume_attempts: int = 2, keep: int = 100
    ) -> None:
        self._assistant = assistant
        self._store = store
        self._resume_attempts = resume_attempts
        self._keep = keep
        self._live: dict[str, IngestJob] = {}
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")

    def get(self, job_id: str) -> IngestJob:
        with self._lock:
            job = self._live.get(job_id)
        job = job or self._store.load(job_id)
        if job is None:
            raise JobNotFoundError(f"No ingest job {job_id!r}.")
        return job

    def jobs(self, *, failed_only: bool = False) -> list[IngestJob]:
        """Every job kept, newest first (live progress for the ones in memory), or those with failed files."""
        with self._lock:
            live = dict(self._live)
        return [live.get(job.id, job) for job in self._store.jobs(failed_only=failed_only)]

    def submit(self, files: list[FileStatus]) -> IngestJob:
        """Record a job for the files whose status is `saved` and queue it; the others are reported as
        they are. The job is in the store when this returns."""
        job = IngestJob(id=uuid.uuid4().hex, files=files)
        job.files_total = sum(1 for f in files if f.status == "saved")
        if not job.files_total:
            job.status, job.finished = "done", time.time()
        self._store.save(job)
        if job.files_total:
            self._queue(job)
        self._store.prune(self._keep)
        return job

    def resume(self) -> None:
        """Queue again the jobs a previous server left unfinished, or fail those it stopped on too often."""
        for job in reversed(self._store.jobs(statuses=UNFINISHED)):
            if job.attempts > self._resume_attempts:
                self._finish_failed(
                    job,
                    f"The server stopped {job.attempts} times while indexing this upload (setting "
                    "upload_resume_attempts); its log may say why. Remove the job, then upload again.",
                )
            else:
                job.status = "queued"
                self._store.save(job)
                self._queue(job)

    def remove(self, job_id: str) -> list[str]:
        """Forget a finished job and delete its files that were not indexed; returns the files deleted."""
        job = self.get(job_id)
        if job.status in UNFINISHED:
            raise JobRunningError(f"Job {job_id!r} is {job.status}; remove it once it has finished.")
        deleted = []
        for item in job.files:
            path = Path(item.path or "")
            if (
                item.status == "failed"
                and item.path
                and delete_upload(path, self._assistant.settings.upload_dir)
            ):
                deleted.append(display_path(path))
        self._store.delete(job_id)
        return deleted

    def _queue(self, job: IngestJob) -> None:
        with self._lock:
            self._live[job.id] = job
        self._worker.submit(self._run, job)

    def _finish_failed(self, job: IngestJob, error: str) -> None:
        job.status, job.error, job.finished = "failed", error, time.time()
        for item in job.files:
            if item.status == "saved":
                item.status, item.error = "failed", error
        self._store.save(job)

    def _run(self, job: IngestJob) -> None:
        try:
            self._ingest(job)
        finally:
            with self._lock:
                self._live.pop(job.id, None)

    def _ingest(self, job: IngestJob) -> None:
        job.status, job.attempts = "running", job.attempts + 1
        job.files_done = job.chunks_total = job.chunks_embedded = 0
        self._store.save(job)

        def progress(kind: str, n: int) -> None:
            if kind == "files":
                job.files_done += n
            elif kind == "chunks":
                job.chunks_total += n
            else:
                job.chunks_embedded += n

        saved = [f for f in job.files if f.status == "saved" and f.path]
        for item in saved:
            if not Path(item.path or "").is_file():
                item.status, item.error = "failed", "the saved file is no longer in the upload folder"
        saved = [f for f in saved if f.status == "saved"]
        try:
            report = self._assistant.ingest([Path(f.path or "") for f in saved], progress=progress)
        except Exception as exc:  # noqa: BLE001  (reported to the client through the job)
            self._finish_failed(job, str(exc))
            return
        failures = {f.path: f.reason for f in report.failed}
        unchanged = set(report.unchanged)
        for item in saved:
            names = {item.path, display_path(Path(item.path or ""))}
            failure = next((failures[name] for name in names if name in failures), None)
            if failure is not None:
                item.status, item.error = "failed", failure
            elif names & unchanged:
                item.status = "unchanged"
            else:
                item.status = "indexed"
        job.status, job.finished = "done", time.time()
        self._store.save(job)

    async def write(self, function: Callable[..., T], *args: Any) -> T:
        """Run another index write (a removal) on the same worker, after the ingests queued before it."""
        return await asyncio.wrap_future(self._worker.submit(function, *args))

    def shutdown(self) -> None:
        """Stop taking work; jobs still queued stay so in the store and resume at the next start."""
        self._worker.shutdown(wait=False, cancel_futures=True)
