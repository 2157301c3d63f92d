"""Uploaded files: safe names inside the upload folder, size and type limits, and background ingest jobs."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar

from rag.assistant import Assistant
from rag.errors import RagError
from rag.ingest import display_path
from rag.parsers import SUPPORTED_SUFFIXES

T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


class JobNotFoundError(RagError):
    """No ingest job with that id (jobs are kept in memory, the latest hundred)."""

    status_code = 404


class UploadRejected(Exception):
    """A file refused before it reached the disk; the message says why."""


def safe_filename(name: str) -> str:
    """A plain file name from whatever the client sent: no folders, no leading dots, only [A-Za-z0-9._-]."""
    base = PurePosixPath(unicodedata.normalize("NFKC", name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).lstrip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.rstrip("._-")[: _MAX_NAME - len(suffix) - 1] or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def save_upload(stream: BinaryIO, name: str, folder: Path, max_bytes: int) -> Path:
    """Copy an upload into `folder` under its safe name, refusing unknown types and oversized files."""
    filename = safe_filename(name)
    suffix = Path(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        allowed = " ".join(sorted(SUPPORTED_SUFFIXES))
        raise UploadRejected(f"unsupported file type {suffix or '(none)'!r}: upload one of {allowed}")
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / filename).resolve()
    if target.parent != folder.resolve():
        raise UploadRejected("invalid file name")
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        written = 0
        with os.fdopen(descriptor, "wb") as out:
            while block := stream.read(1 << 20):
                written += len(block)
                if written > max_bytes:
                    raise UploadRejected(
                        f"file is larger than the {max_bytes / 2**20:.0f} MiB limit (setting max_upload_mb)"
                    )
                out.write(block)
        if written == 0:
            raise UploadRejected("file is empty")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


@dataclass
class FileStatus:
    """An uploaded file: `saved`, then `indexed`, `unchanged` or `failed`; or `rejected` at upload."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IngestJobs:
    """Runs uploads' ingests one at a time on a worker thread and keeps their progress for polling."""

    def __init__(self, assistant: Assistant, keep: int = 100) -> None:
        self._assistant = assistant
        self._keep = keep
        self._jobs: OrderedDict[str, IngestJob] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")

    def get(self, job_id: str) -> IngestJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(
                f"No ingest job {job_id!r} (jobs are kept in memory until the server restarts)."
            )
        return job

    def submit(self, files: list[FileStatus]) -> IngestJob:
        """Start indexing the files whose status is `saved`; the others are reported as they are."""
        job = IngestJob(id=uuid.uuid4().hex, files=files)
        job.files_total = sum(1 for f in files if f.status == "saved")
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)
        if job.files_total:
            self._worker.submit(self._run, job)
        else:
            job.status, job.finished = "done", time.time()
        return job

    def _run(self, job: IngestJob) -> None:
        job.status = "running"

        def progress(kind: str, n: int) -> None:
            if kind == "files":
                job.files_done += n
            elif kind == "chunks":
                job.chunks_total += n
            else:
                job.chunks_embedded += n

        saved = [f for f in job.files if f.status == "saved"]
        try:
            report = self._assistant.ingest([Path(f.path) for f in saved if f.path], progress=progress)
        except Exception as exc:  # noqa: BLE001  (reported to the client through the job)
            job.status, job.error = "failed", str(exc)
            for item in saved:
                item.status, item.error = "failed", str(exc)
        else:
            failures = {f.path: f.reason for f in report.failed}
            unchanged = set(report.unchanged)
            for item in saved:
                shown = display_path(Path(item.path or ""))
                if shown in failures:
                    item.status, item.error = "failed", failures[shown]
                elif shown in unchanged:
                    item.status = "unchanged"
                else:
                    item.status = "indexed"
            job.status = "done"
        job.finished = time.time()

    async def write(self, function: Callable[..., T], *args: Any) -> T:
        """Run another index write (a removal) on the same worker, after the ingests queued before it."""
        return await asyncio.wrap_future(self._worker.submit(function, *args))

    def shutdown(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
