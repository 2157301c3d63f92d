"""Ingest: discover files, read and hash each once, parse, chunk, embed and commit them to the index."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.catalog import FileRecord
from rag.chunking import Chunker
from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import DocumentNotFoundError, ParseError
from rag.index import FORMAT_VERSION, Index, IndexChange, Manifest, WriteLock, read_current
from rag.lexical import lexical_text
from rag.parsers import SUPPORTED_SUFFIXES, parse, read_file
from rag.stores import VectorIndexPolicy
from rag.types import Chunk, Document, FileFailure, IngestReport

ProgressCallback = Callable[[str, int], None]
"""Called with ("files", n) when n more files are handled, ("chunks", n) when n chunks are queued
for embedding and ("embedded", n) when n more chunks are embedded."""

_FLUSH_CHUNKS = 1024


def display_path(path: Path) -> str:
    """How a file is named in citations: relative to the working folder when inside it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def discover_files(paths: Iterable[Path]) -> tuple[list[Path], list[FileFailure]]:
    """Files to ingest: named files as given, folders searched for supported, non-hidden files."""
    found: list[Path] = []
    failures: list[FileFailure] = []
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                if candidate.is_file() and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.append(candidate)
        elif path.is_file():
            found.append(path)
        else:
            failures.append(FileFailure(str(path), "no such file or folder"))
    return found, failures


@dataclass
class _PendingFile:
    record: FileRecord
    display: str
    documents: list[Document]
    chunks: list[Chunk] = field(default_factory=list)
    replaced: bool = False


class Ingestor:
    """Writes files into the index at `settings.index_dir`, one atomic generation per call.

    `live_index` opens the index readers use (so a write starts from the latest generation).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder,
        chunker: Chunker,
        vector_policy: VectorIndexPolicy,
        live_index: Callable[[], Index],
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.chunker = chunker
        self.vector_policy = vector_policy
        self.live_index = live_index
        self.index_dir = settings.index_dir
        self.max_bytes = int(settings.max_file_mb * 2**20)

    def ingest(
        self, paths: Iterable[Path | str], *, prune: bool = False, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Index files and folders: skip unchanged files, replace changed ones, optionally prune vanished.

        Files that cannot be read are reported in `failed`; all others are indexed. The change is
        committed atomically at the end: a crash leaves the previous index.
        """
        started = time.perf_counter()
        notify = progress or (lambda _kind, _n: None)
        roots = [Path(p) for p in paths]
        files, failures = discover_files(roots)
        report = IngestReport(failed=failures)
        with WriteLock(self.index_dir):
            base = None
            if read_current(self.index_dir) is not None:
                base = self.live_index()
                change = base.begin(self.vector_policy)
            else:
                change = IndexChange(self.index_dir, None, self._new_manifest(), self.vector_policy)
            try:
                self._ingest_into(change, files, report, notify)
                if prune:
                    self._prune(change, report, roots)
                if base is not None and not (report.added or report.updated or report.removed):
                    change.abort()
                else:
                    change.commit()
            except BaseException:
                change.abort()
                raise
        report.seconds = time.perf_counter() - started
        return report

    def remove_documents(self, ids: Iterable[str]) -> list[str]:
        """Remove documents (by id or file path) with every file they came from; returns removed files."""
        with WriteLock(self.index_dir):
            change = self.live_index().begin(self.vector_policy)
            removed: list[str] = []
            try:
                for doc_id in ids:
                    owner = change.catalog.document_owner(doc_id) or (
                        str(Path(doc_id).resolve())
                        if change.catalog.file(str(Path(doc_id).resolve()))
                        else None
                    )
                    if owner is None:
                        raise DocumentNotFoundError(
                            f"No document {doc_id!r} in the index at {self.index_dir}."
                        )
                    chunk_ids = change.catalog.remove_file(owner)
                    change.vectors.remove(np.asarray(chunk_ids, dtype=np.int64))
                    removed.append(display_path(Path(owner)))
                change.commit()
            except BaseException:
                change.abort()
                raise
        return removed

    def _new_manifest(self) -> Manifest:
        return Manifest(
            format_version=FORMAT_VERSION,
            embedder=self.embedder.name,
            dimension=self.embedder.dimension,
            chunk_tokens=self.settings.chunk_tokens,
            chunk_overlap=self.settings.chunk_overlap,
            embed_titles=self.settings.embed_titles,
        )

    def _ingest_into(
        self, change: IndexChange, files: list[Path], report: IngestReport, notify: ProgressCallback
    ) -> None:
        pending: list[_PendingFile] = []
        queued = 0
        claimed: dict[str, str] = {}
        for path in files:
            pending_file = self._read(change, path, report, claimed)
            notify("files", 1)
            if pending_file is None:
                continue
            pending_file.chunks = [c for d in pending_file.documents for c in self.chunker.chunk(d)]
            pending.append(pending_file)
            queued += len(pending_file.chunks)
            notify("chunks", len(pending_file.chunks))
            if queued >= _FLUSH_CHUNKS:
                self._apply(change, pending, report, notify)
                pending, queued = [], 0
        self._apply(change, pending, report, notify)

    def _read(
        self, change: IndexChange, path: Path, report: IngestReport, claimed: dict[str, str]
    ) -> _PendingFile | None:
        """Read and hash the file once; parse it when it is new or changed, else record why not."""
        display = display_path(path)
        key = str(path.resolve())
        try:
            file = read_file(path, display, self.max_bytes)
            previous = change.catalog.file(key)
            if previous is not None and previous.content_hash == file.content_hash:
                report.unchanged.append(display)
                return None
            documents = parse(file)
        except ParseError as exc:
            report.failed.append(FileFailure(display, exc.reason))
            return None
        for document in documents:
            owner = claimed.get(document.id) or change.catalog.document_owner(document.id)
            if owner is not None and owner != key:
                report.failed.append(
                    FileFailure(display, f"document id {document.id!r} is already indexed from {owner}")
                )
                return None
        for document in documents:
            claimed[document.id] = key
        record = FileRecord(path=key, content_hash=file.content_hash, size=file.size, ingested_at=time.time())
        return _PendingFile(record, display, documents, replaced=previous is not None)

    def _apply(
        self, change: IndexChange, pending: list[_PendingFile], report: IngestReport, notify: ProgressCallback
    ) -> None:
        """Embed the queued chunks and write their files into the change."""
        titles = {d.id: d.title for p in pending for d in p.documents}
        texts = [
            lexical_text(titles[c.doc_id], c.text) if self.settings.embed_titles else c.text
            for p in pending
            for c in p.chunks
        ]
        vectors = self.embedder.embed(
            texts, batch_size=self.settings.embed_batch_size, on_batch=lambda n: notify("embedded", n)
        )
        offset = 0
        for item in pending:
            removed = change.catalog.remove_file(item.record.path)
            change.vectors.remove(np.asarray(removed, dtype=np.int64))
            change.catalog.put_file(item.record)
            for document in item.documents:
                change.catalog.add_document(document, item.record.path)
            ids = change.catalog.add_chunks(item.chunks)
            change.vectors.add(np.asarray(ids, dtype=np.int64), vectors[offset : offset + len(ids)])
            offset += len(ids)
            report.chunks_added += len(ids)
            (report.updated if item.replaced else report.added).append(item.display)

    def _prune(self, change: IndexChange, report: IngestReport, roots: list[Path]) -> None:
        """Drop indexed files under the ingested paths that no longer exist."""
        prefixes = [str(root.resolve()) for root in roots]
        for record in change.catalog.files():
            under = any(
                record.path == p or record.path.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes
            )
            if under and not os.path.exists(record.path):
                removed = change.catalog.remove_file(record.path)
                change.vectors.remove(np.asarray(removed, dtype=np.int64))
                report.removed.append(display_path(Path(record.path)))
