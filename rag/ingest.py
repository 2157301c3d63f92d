"""Ingest: discover files, read and hash each once, parse, chunk, embed and commit them to the index."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.catalog import FileRecord
from rag.chunking import Chunker
from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import DocumentNotFoundError, InvalidInputError, ParseError
from rag.index import FORMAT_VERSION, Index, IndexChange, Manifest, WriteLock, read_current
from rag.lexical import lexical_text
from rag.parsers import SUPPORTED_SUFFIXES, ParseLimits, read_file
from rag.parsers.common import SourceFile, printable_name
from rag.parsers.pool import ChunkLimit, Parsed, ParsePool, chunk_documents, portable_chunker
from rag.stores import VectorIndexPolicy
from rag.types import Chunk, Document, FileFailure, IngestReport

ProgressCallback = Callable[[str, int], None]
"""Called with ("files", n) when n more files are handled, ("chunks", n) when n chunks are queued
for embedding and ("embedded", n) when n more chunks are embedded."""

_FLUSH_CHUNKS = 1024


def display_path(path: Path) -> str:
    """How a file is named in citations: relative to the working folder when inside it, printable."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        resolved = Path(os.path.abspath(path))
    try:
        shown = str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(resolved)
    return printable_name(shown)


def discover_files(paths: Iterable[Path]) -> tuple[list[Path], list[FileFailure]]:
    """Files to ingest: named files as given, folders searched for supported, non-hidden files.

    What is neither a file nor a folder (a FIFO, a socket, a device, a broken or looping symbolic link)
    is reported with the reason; symbolic links to folders are not followed (and reported).
    """
    found: list[Path] = []
    failures: list[FileFailure] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                problem = _not_a_file(candidate, inside_folder=True)
                if problem is not None:
                    failures.append(
                        FileFailure(
                            display_path(candidate.parent) + os.sep + printable_name(candidate.name), problem
                        )
                    )
                elif candidate.is_file() and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
                    _add_once(candidate, found, seen)
        elif path.is_file():
            _add_once(path, found, seen)
        else:
            problem = _not_a_file(path, inside_folder=False)
            failures.append(FileFailure(printable_name(str(path)), problem or "no such file or folder"))
    return found, failures


def _add_once(path: Path, found: list[Path], seen: set[Path]) -> None:
    """Add a file unless it was found already (a link to it, or a folder named twice)."""
    resolved = path.resolve()
    if resolved not in seen:
        seen.add(resolved)
        found.append(path)


def _not_a_file(path: Path, *, inside_folder: bool) -> str | None:
    """Why a path found in a folder (or named) is neither a regular file nor a folder; None when it is."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return "no such file or folder"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISLNK(mode):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return "broken symbolic link: its target does not exist"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symbolic link loop: the link leads back to itself"
            return f"unreadable symbolic link: {exc.strerror or exc}"
        if stat.S_ISDIR(mode) and inside_folder:
            return "symbolic link to a folder: not followed (name the folder itself to index it)"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"not a regular file: {kind}"


@dataclass(frozen=True)
class _ReadFile:
    """A file as read for ingest: its key (absolute path), its name as shown, and its bytes, unless it
    is unchanged or could not be read."""

    key: str
    display: str
    file: SourceFile | None
    failure: str | None = None
    unchanged: bool = False
    replaced: bool = False


@dataclass
class _PendingFile:
    record: FileRecord
    display: str
    documents: list[Document]
    chunks: list[Chunk] = field(default_factory=list)
    replaced: bool = False


def embedding_texts(
    documents: Iterable[Document], chunks: Iterable[Chunk], *, embed_titles: bool
) -> list[str]:
    """The text embedded for each chunk, in order: its document's title in front when `embed_titles`."""
    titles = {d.id: d.title for d in documents}
    return [lexical_text(titles[c.doc_id], c.text) if embed_titles else c.text for c in chunks]


def read_for_ingest(path: Path, previous_hash: str | None, max_bytes: int) -> _ReadFile:
    """Read and hash a file once: its bytes when new or changed since `previous_hash`, else why not."""
    display = display_path(path)
    key = str(path.resolve())
    try:
        file = read_file(path, display, max_bytes)
    except ParseError as exc:
        return _ReadFile(key, display, None, failure=exc.reason)
    if previous_hash == file.content_hash:
        return _ReadFile(key, display, None, unchanged=True)
    return _ReadFile(key, display, file, replaced=previous_hash is not None)


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
        self.limits = ParseLimits.from_settings(settings)

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
                self._embed_missing(change, notify)
                self._ingest_into(change, files, report, notify)
                if prune:
                    self._prune(change, report, roots)
                changed = report.added or report.updated or report.removed or len(change.missing_vectors)
                if base is not None and not changed:
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
                    if "\x00" in doc_id:  # no id or path holds one (the file-path lookup would fail on it)
                        raise InvalidInputError(f"A document id cannot contain a NUL character: {doc_id!r}.")
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

    def _embed_missing(self, change: IndexChange, notify: ProgressCallback) -> None:
        """Embed again the chunks whose vectors a shared store (Milvus) lacks, as its reconcile found."""
        if len(change.missing_vectors) == 0:
            return
        wanted = set(change.missing_vectors.tolist())
        rows = [row for row in change.catalog.titled_chunk_texts() if row[0] in wanted]
        texts = [lexical_text(title, text) if self.settings.embed_titles else text for _, title, text in rows]
        vectors = self.embedder.embed(
            texts, batch_size=self.settings.embed_batch_size, on_batch=lambda n: notify("embedded", n)
        )
        change.vectors.add(np.asarray([row[0] for row in rows], dtype=np.int64), vectors)

    def _new_manifest(self) -> Manifest:
        return Manifest(
            format_version=FORMAT_VERSION,
            embedder=self.embedder.name,
            dimension=self.embedder.dimension,
            chunk_tokens=self.settings.chunk_tokens,
            chunk_overlap=self.settings.chunk_overlap,
            embed_titles=self.settings.embed_titles,
            vector_store=self.settings.vector_store,
            milvus_uri=self.settings.milvus_uri,
            milvus_collection=self.settings.milvus_collection,
            milvus_index_type=self.settings.milvus_index_type,
        )

    def _ingest_into(
        self, change: IndexChange, files: list[Path], report: IngestReport, notify: ProgressCallback
    ) -> None:
        """Parse and chunk the files in worker processes (ahead, in order) while embedding the ones before."""
        known = {record.path: record.content_hash for record in change.catalog.files()}
        chunker = portable_chunker(self.chunker)
        chunking = ChunkLimit(chunker or self.chunker, self.settings.max_chunks_per_document)
        pool: ParsePool[_ReadFile] = ParsePool(
            self.limits, workers=self.settings.parse_workers, chunking=chunking if chunker else None
        )
        pending: list[_PendingFile] = []
        queued = 0
        claimed: dict[str, str] = {}
        for read, parsed in pool.parse_all(self._read_all(files, known)):
            notify("files", 1)
            pending_file = self._accept(change, read, parsed, chunking, report, claimed)
            if pending_file is None:
                continue
            pending.append(pending_file)
            queued += len(pending_file.chunks)
            notify("chunks", len(pending_file.chunks))
            if queued >= _FLUSH_CHUNKS:
                self._apply(change, pending, report, notify)
                pending, queued = [], 0
        self._apply(change, pending, report, notify)

    def _read_all(
        self, files: list[Path], known: dict[str, str]
    ) -> Iterator[tuple[_ReadFile, SourceFile | None]]:
        """Read and hash each file once (in the pool's thread); only new or changed files go to parsing."""
        for path in files:
            read = read_for_ingest(path, known.get(str(path.resolve())), self.max_bytes)
            yield read, read.file

    def _accept(
        self,
        change: IndexChange,
        read: _ReadFile,
        parsed: Parsed | str | None,
        chunking: ChunkLimit,
        report: IngestReport,
        claimed: dict[str, str],
    ) -> _PendingFile | None:
        """A parsed file ready to embed, or None with the reason recorded in the report."""
        if read.unchanged:
            report.unchanged.append(read.display)
            return None
        if read.failure is not None or read.file is None:
            report.failed.append(FileFailure(read.display, read.failure or "not read"))
            return None
        if not isinstance(parsed, Parsed):
            report.failed.append(FileFailure(read.display, parsed or "not parsed"))
            return None
        documents = parsed.documents
        try:
            chunks = (
                parsed.chunks
                if parsed.chunks is not None
                else chunk_documents(read.display, documents, chunking)
            )
        except ParseError as exc:
            report.failed.append(FileFailure(read.display, exc.reason))
            return None
        for document in documents:
            owner = claimed.get(document.id) or change.catalog.document_owner(document.id)
            if owner is not None and owner != read.key:
                shown = printable_name(owner)
                report.failed.append(
                    FileFailure(read.display, f"document id {document.id!r} is already indexed from {shown}")
                )
                return None
        for document in documents:
            claimed[document.id] = read.key
        file = read.file
        record = FileRecord(
            path=read.key, content_hash=file.content_hash, size=file.size, ingested_at=time.time()
        )
        return _PendingFile(record, read.display, documents, chunks, replaced=read.replaced)

    def _apply(
        self, change: IndexChange, pending: list[_PendingFile], report: IngestReport, notify: ProgressCallback
    ) -> None:
        """Embed the queued chunks and write their files into the change."""
        texts = embedding_texts(
            [d for p in pending for d in p.documents],
            [c for p in pending for c in p.chunks],
            embed_titles=self.settings.embed_titles,
        )
        vectors = self.embedder.embed(
            texts, batch_size=self.settings.embed_batch_size, on_batch=lambda n: notify("embedded", n)
        )
        self._write(change, pending, vectors, report)

    def _write(
        self, change: IndexChange, pending: list[_PendingFile], vectors: np.ndarray, report: IngestReport
    ) -> None:
        """Write embedded files into the change (a file indexed before is replaced: no stale chunks)."""
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
