"""The Ray Data ingest engine (`rag ingest --engine ray`): the in-process Ingestor with its files parsed and
chunked in parallel Ray tasks and embedded by a pool of Ray actors (one embedding model per actor, batched).

Everything else is the Ingestor's own: the file list, the unchanged-file check, the per-file failures, the
catalog and vector-store writes (in file order, so chunk ids are the same as in-process) and the atomic
commit. Ray runs locally (`ray_workers` CPUs) or on the cluster `RAY_ADDRESS` names; there every node needs
rag installed and the files at the same paths (a shared volume).

Ray Data may fuse the parse stage into the embedding actors (one process reads, parses, chunks and
embeds a file: no transfer between them); either way files are handled `ray_workers` at a time.

The parse limits' time budget and memory cap (parse_timeout_seconds, max_parse_memory_mb) are the
in-process pool's: Ray tasks run without them (Ray's memory monitor stops a runaway worker instead).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.chunking import Chunker
from rag.config import Settings
from rag.embeddings import Embedder, load_embedder
from rag.errors import ParseError, RagError
from rag.index import Index, IndexChange
from rag.ingest import (
    _FLUSH_CHUNKS,
    Ingestor,
    ProgressCallback,
    _PendingFile,
    embedding_texts,
    read_for_ingest,
)
from rag.parsers import ParseLimits
from rag.parsers.pool import ChunkLimit, Parsed, chunk_documents, parse_in_worker, portable_chunker
from rag.stores import VectorIndexPolicy
from rag.types import IngestReport

if TYPE_CHECKING:
    from rag.assistant import Assistant

_OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of a local Ray (files and vectors in flight): small, since results stream to the driver."""
_FILES_PER_EMBED_CALL = 4


@contextmanager
def ray_session(workers: int) -> Iterator[Any]:
    """The `ray` module, connected: to the running Ray, to the cluster `RAY_ADDRESS` names, or to a local
    Ray of `workers` CPUs started here (and stopped on leaving)."""
    try:
        import ray
    except ImportError as exc:
        raise RagError("`rag ingest --engine ray` needs Ray: pip install 'rag[scale]'.") from exc
    started = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=workers,
                object_store_memory=_OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
            )
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _parse_row(row: dict[str, Any], max_bytes: int, limits: ParseLimits, chunking: ChunkLimit | None) -> dict:
    """A Ray task: read, hash, parse and (given a portable chunker) chunk one file, as a pool worker does."""
    read = read_for_ingest(Path(row["path"]), row["previous"] or None, max_bytes)
    parsed: Parsed | str | None = None
    if read.file is not None:
        try:
            parsed = parse_in_worker(read.file, limits, chunking)
        except ParseError as exc:
            parsed = exc.reason
        except RecursionError:
            parsed = "nested too deeply to parse"
        except Exception as exc:  # noqa: BLE001  (a parser library's own bug must not stop the ingest)
            parsed = f"the parser failed: {type(exc).__name__}: {str(exc).strip()[:160]}"
    return {"n": row["n"], "result": pickle.dumps((read, parsed))}


class _EmbedFiles:
    """A Ray actor: one embedding model, embedding the chunks of a few files per call (chunking them first
    when the parse tasks could not)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedder = load_embedder(
            settings.embedder,
            backend=settings.embedder_backend,
            cache_dir=settings.model_cache_dir,
            allow_downloads=settings.allow_downloads,
            precision=settings.embedder_precision,
        )
        chunker = Chunker(
            self.embedder, max_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap
        )
        self.chunking = ChunkLimit(chunker, settings.max_chunks_per_document)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        files = [pickle.loads(blob) for blob in batch["result"]]
        files = [(read, self._chunked(read.display, parsed)) for read, parsed in files]
        texts_per_file = [
            embedding_texts(parsed.documents, parsed.chunks or [], embed_titles=self.settings.embed_titles)
            if isinstance(parsed, Parsed)
            else []
            for _, parsed in files
        ]
        vectors = self.embedder.embed(
            [text for texts in texts_per_file for text in texts], batch_size=self.settings.embed_batch_size
        )
        results, offset = [], 0
        for (read, parsed), texts in zip(files, texts_per_file):
            results.append(pickle.dumps((read, parsed, vectors[offset : offset + len(texts)])))
            offset += len(texts)
        return {"n": list(batch["n"]), "result": results}

    def _chunked(self, source: str, parsed: Parsed | str | None) -> Parsed | str | None:
        if not isinstance(parsed, Parsed) or parsed.chunks is not None:
            return parsed
        try:
            return Parsed(parsed.documents, chunk_documents(source, parsed.documents, self.chunking))
        except ParseError as exc:
            return exc.reason


class RayIngestor(Ingestor):
    """An Ingestor whose files are parsed, chunked and embedded on Ray (`workers` embedding actors)."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder,
        chunker: Chunker,
        vector_policy: VectorIndexPolicy,
        live_index: Callable[[], Index],
        workers: int | None = None,
    ) -> None:
        super().__init__(
            settings, embedder=embedder, chunker=chunker, vector_policy=vector_policy, live_index=live_index
        )
        self.workers = workers or settings.ray_workers

    @classmethod
    def for_assistant(cls, assistant: Assistant, workers: int | None = None) -> RayIngestor:
        """The Ray engine over the assistant's index, with its embedder, chunker and layout policy."""
        return cls(
            assistant.settings,
            embedder=assistant.embedder,
            chunker=assistant.chunker,
            vector_policy=assistant.vector_policy,
            live_index=assistant.index,
            workers=workers,
        )

    def _ingest_into(
        self, change: IndexChange, files: list[Path], report: IngestReport, notify: ProgressCallback
    ) -> None:
        if not files:
            return
        known = {record.path: record.content_hash for record in change.catalog.files()}
        portable = portable_chunker(self.chunker)
        chunking = ChunkLimit(portable or self.chunker, self.settings.max_chunks_per_document)
        rows = [
            {"n": n, "path": str(path), "previous": known.get(str(path.resolve()), "")}
            for n, path in enumerate(files)
        ]
        pending: list[_PendingFile] = []
        vectors: list[np.ndarray] = []
        queued = 0
        claimed: dict[str, str] = {}
        with ray_session(self.workers) as ray:
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True  # files come back in order: same chunk ids
            context.enable_progress_bars = False
            dataset = (
                ray.data.from_items(rows, override_num_blocks=min(len(rows), 8 * self.workers))
                .map(
                    _parse_row,
                    fn_kwargs={
                        "max_bytes": self.max_bytes,
                        "limits": self.limits,
                        "chunking": chunking if portable is not None else None,
                    },
                    num_cpus=1,
                )
                .map_batches(
                    _EmbedFiles,
                    fn_constructor_kwargs={"settings": self.settings},
                    batch_size=_FILES_PER_EMBED_CALL,
                    concurrency=self.workers,
                    num_cpus=1,
                )
            )
            for row in dataset.iter_rows():
                read, parsed, file_vectors = pickle.loads(row["result"])
                notify("files", 1)
                pending_file = self._accept(change, read, parsed, chunking, report, claimed)
                if pending_file is None:
                    continue
                notify("chunks", len(pending_file.chunks))
                notify("embedded", len(pending_file.chunks))
                pending.append(pending_file)
                vectors.append(file_vectors)
                queued += len(pending_file.chunks)
                if queued >= _FLUSH_CHUNKS:
                    self._write(change, pending, np.concatenate(vectors), report)
                    pending, vectors, queued = [], [], 0
        if pending:
            self._write(change, pending, np.concatenate(vectors), report)
