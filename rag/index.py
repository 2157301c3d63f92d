"""An index on disk: catalog + vector store + manifest, written as generations swapped in atomically.

Layout of `index_dir`: `CURRENT` names the live generation folder (`gen-000007/`), which holds
`manifest.json`, `catalog.sqlite`, `vectors.faiss` and `lexical/` (BM25). A change is built in a
new folder beside it, fsynced, and made live by atomically replacing `CURRENT`; a crash at any point
leaves the previous generation or the new one, never a mix. The generation a commit replaces is kept
beside the new one (older ones are removed), so a damaged live generation can be rolled back
(`rag check --repair`, rag/integrity.py). A damaged file raises IndexCorruptError naming it and saying
whether an intact generation is there to recover.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.catalog import Catalog
from rag.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError
from rag.lexical import LEXICAL_DIR, LexicalIndex, lexical_text
from rag.stores import (
    DEFAULT_NPROBE,
    FLAT,
    SharedVectorStore,
    VectorIndexPolicy,
    VectorStore,
    new_vector_store,
    open_vector_store,
    vectors_file,
)

log = logging.getLogger("rag")

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
CATALOG_FILE = "catalog.sqlite"
VECTORS_FILE = "vectors.faiss"


@dataclass
class Manifest:
    """What an index was built with, and what it holds."""

    format_version: int
    embedder: str
    dimension: int
    chunk_tokens: int
    chunk_overlap: int
    vector_index: str = FLAT
    embed_titles: bool = True
    """Whether chunks were embedded with their document title in front (absent in old manifests: the
    default then and now, True)."""
    vector_store: str = "faiss"
    """Where the vectors are: "faiss" (a file in each generation) or "milvus" (one collection shared by the
    generations, named by each generation's `vectors.milvus.json`)."""
    milvus_uri: str | None = None
    milvus_collection: str | None = None
    milvus_index_type: str | None = None
    documents: int = 0
    chunks: int = 0
    generation: int = 0
    updated_at: float = field(default_factory=time.time)


_lexical_load_lock = threading.Lock()
"""Held while a BM25 index loads: once per generation, and never two loads at a time (numpy reads array
headers with `ast.literal_eval`, which CPython 3.11 cannot run on two threads at once)."""


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fault_point(name: str) -> None:
    """Crash here on purpose when RAG_FAULT_INJECT names this point (the crash-safety tests use it)."""
    if os.environ.get("RAG_FAULT_INJECT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _generation_name(number: int) -> str:
    return f"gen-{number:06d}"


GENERATION_NAME = re.compile(r"gen-\d{6,}")
"""The name of a complete generation folder (one being written ends in `.tmp-PID`)."""


def pointed_generation(index_dir: Path, raw: bytes) -> tuple[Path | None, str]:
    """The folder CURRENT's content names, or None with what is wrong with it."""
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        name = ""
    if not raw.strip():
        return None, "is empty"
    if not GENERATION_NAME.fullmatch(name):
        return None, f"holds {len(raw)} bytes that do not name a generation ({raw[:24]!r})"
    folder = index_dir / name
    if not folder.is_dir():
        return None, f"names {name}, which does not exist"
    return folder, ""


def read_current(index_dir: Path) -> Path | None:
    """The live generation folder, or None when the folder holds no index (no CURRENT file).

    Raises IndexCorruptError when CURRENT exists but does not name a generation folder beside it,
    saying whether an intact generation is there to recover.
    """
    problem = ""
    for _ in range(3):  # a commit may swap CURRENT and remove the folder just read: read it again
        try:
            raw = (index_dir / CURRENT_FILE).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raw, problem = b"", f"cannot be read ({exc.strerror or exc})"
            break
        folder, problem = pointed_generation(index_dir, raw)
        if folder is not None:
            return folder
    raise IndexCorruptError(
        f"The index at {index_dir} cannot be opened: its {CURRENT_FILE} file {problem}, so it does not "
        f"say which generation is live. {recovery_advice(index_dir, None)}"
    )


def recovery_advice(index_dir: Path, damaged: Path | None) -> str:
    """What to do about a damaged index: make an intact generation live again, or rebuild."""
    from rag.integrity import newest_intact_generation

    intact = newest_intact_generation(index_dir, exclude=damaged)
    if intact is not None and intact.manifest is not None:
        lost = (
            " (documents ingested after it was written must be ingested again)" if damaged is not None else ""
        )
        return (
            f"Generation {intact.folder.name} beside it is intact ({intact.manifest.documents} documents, "
            f"{intact.manifest.chunks} chunks): `rag check --repair --index {index_dir}` makes it live "
            f"again{lost}. Do not delete the index folder."
        )
    return (
        f"No intact generation is left to recover: rebuild the index into a fresh folder with "
        f"`rag ingest PATH --index NEW_DIR` (`rag check --index {index_dir}` lists what is damaged)."
    )


def damaged_file(index_dir: Path, folder: Path, name: str, what: str) -> IndexCorruptError:
    """The error for a damaged file `name` of generation `folder`: which file, what is wrong, what to do."""
    return IndexCorruptError(
        f"The index at {index_dir} is damaged: {folder.name}/{name} {what}. "
        f"{recovery_advice(index_dir, folder)}"
    )


def _live_folder(index_dir: Path) -> Path:
    """The live generation folder (IndexMissingError when the folder holds no index)."""
    folder = read_current(index_dir)
    if folder is None:
        raise IndexMissingError(
            f"No index at {index_dir}. Build one with `rag ingest PATH --index {index_dir}`."
        )
    return folder


def read_manifest(index_dir: Path, folder: Path | None = None) -> Manifest:
    """The manifest of the live generation, or of the generation `folder`."""
    folder = folder or _live_folder(index_dir)
    try:
        data = json.loads((folder / MANIFEST_FILE).read_bytes())
        return Manifest(**data)
    except FileNotFoundError as exc:
        raise damaged_file(index_dir, folder, MANIFEST_FILE, "is missing") from exc
    except (OSError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise damaged_file(
            index_dir, folder, MANIFEST_FILE, f"is not a readable manifest ({reason})"
        ) from exc


def _check_compatible(
    index_dir: Path,
    manifest: Manifest,
    embedder: str | None,
    dimension: int | None,
    embed_titles: bool | None,
) -> None:
    """Refuse an index of another format, embedder or title setting, saying how to rebuild it."""
    rebuild = f"Rebuild it into a fresh folder: `rag ingest PATH --index NEW_DIR` (or delete {index_dir})."
    if manifest.format_version != FORMAT_VERSION:
        raise IndexIncompatibleError(
            f"The index at {index_dir} has format version {manifest.format_version}; this rag reads "
            f"version {FORMAT_VERSION}. {rebuild}"
        )
    if embedder is not None and (manifest.embedder != embedder or manifest.dimension != dimension):
        raise IndexIncompatibleError(
            f"The index at {index_dir} was built with embedder {manifest.embedder!r} "
            f"({manifest.dimension} dims), not {embedder!r} ({dimension} dims). {rebuild}"
        )
    if embed_titles is not None and manifest.embed_titles != embed_titles:
        raise IndexIncompatibleError(
            f"The index at {index_dir} was built with embed_titles={manifest.embed_titles}, but the "
            f"setting is {embed_titles}, so new chunks would be embedded unlike the ones it holds. Set "
            f"RAG_EMBED_TITLES={str(manifest.embed_titles).lower()} to use it as built, or rebuild it: "
            f"`rag ingest PATH --index NEW_DIR` (or delete {index_dir})."
        )


def count_mismatch(manifest: Manifest, chunks: int, dimension: int) -> tuple[str, str] | None:
    """(file, what is wrong) when the catalog or the vectors disagree with the manifest (cheap checks made
    at every open; `rag check` also compares the chunk ids of the catalog, the vectors and BM25)."""
    if dimension != manifest.dimension:
        return (
            VECTORS_FILE,
            f"holds {dimension}-dimensional vectors, but {MANIFEST_FILE} says {manifest.dimension}",
        )
    if chunks != manifest.chunks:
        return CATALOG_FILE, f"holds {chunks} chunks, but {MANIFEST_FILE} says {manifest.chunks}"
    return None


def _still_live(index_dir: Path, folder: Path) -> bool:
    """Whether `folder` is still the live generation (False once a newer one went live)."""
    try:
        return read_current(index_dir) == folder
    except IndexCorruptError:
        return True


class Index:
    """One generation of an index, opened read-only; `begin()` starts a change.

    An Index stays usable after a newer generation goes live and its folder is removed (its files are
    open), so a search holding it finishes on it: a process that swaps in the new generation drops
    its reference instead of closing it, and the catalog's connection closes with the last reference.
    """

    def __init__(
        self, index_dir: Path, folder: Path, manifest: Manifest, *, nprobe: int = DEFAULT_NPROBE
    ) -> None:
        self.index_dir = index_dir
        self.folder = folder
        self.manifest = manifest
        try:
            self.catalog = Catalog(folder / CATALOG_FILE, read_only=True)
            chunks = self.catalog.chunk_count()
        except sqlite3.DatabaseError as exc:
            raise damaged_file(index_dir, folder, CATALOG_FILE, f"is not a readable catalog ({exc})") from exc
        try:
            self.vectors: VectorStore = open_vector_store(folder, nprobe=nprobe)
        except IndexCorruptError as exc:
            self.catalog.close()
            raise damaged_file(index_dir, folder, VECTORS_FILE, str(exc)) from exc
        problem = count_mismatch(manifest, chunks, self.vectors.dimension)
        if problem:
            self.catalog.close()
            raise damaged_file(index_dir, folder, problem[0], problem[1])
        self._lexical: LexicalIndex | None = None

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index, loaded on first use (rebuilt in memory for an index written before BM25)."""
        with _lexical_load_lock:
            if self._lexical is None:
                try:
                    self._lexical = LexicalIndex.load(self.folder / LEXICAL_DIR)
                except OSError:  # written before BM25, or removed since by a newer generation's commit
                    self._lexical = build_lexical(self.catalog)
                except IndexCorruptError as exc:
                    raise damaged_file(self.index_dir, self.folder, LEXICAL_DIR, str(exc)) from exc
        return self._lexical

    @classmethod
    def open(
        cls,
        index_dir: Path,
        *,
        embedder: str | None = None,
        dimension: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        embed_titles: bool | None = None,
    ) -> Index:
        """Open the live index, checking it was built by the same format, embedder and title setting."""
        while True:
            folder = _live_folder(index_dir)
            try:
                manifest = read_manifest(index_dir, folder)
                _check_compatible(index_dir, manifest, embedder, dimension, embed_titles)
                return cls(index_dir, folder, manifest, nprobe=nprobe)
            except (IndexIncompatibleError, IndexCorruptError, sqlite3.Error, RuntimeError):
                if _still_live(index_dir, folder):
                    raise
                # A newer generation went live and removed this one while it was being opened: open that.

    @staticmethod
    def create(index_dir: Path, manifest: Manifest) -> Index:
        """Write an empty first generation and open it."""
        index_dir.mkdir(parents=True, exist_ok=True)
        change = IndexChange(index_dir, None, manifest)
        change.commit()
        return Index.open(index_dir, embedder=manifest.embedder, dimension=manifest.dimension)

    def is_stale(self) -> bool:
        """True when another process has committed a newer generation."""
        return read_current(self.index_dir) != self.folder

    def begin(self, policy: VectorIndexPolicy | None = None) -> IndexChange:
        return IndexChange(self.index_dir, self, self.manifest, policy)

    def close(self) -> None:
        self.catalog.close()


class IndexChange:
    """A new generation being built: a writable copy of the catalog and the vectors."""

    def __init__(
        self, index_dir: Path, base: Index | None, manifest: Manifest, policy: VectorIndexPolicy | None = None
    ) -> None:
        self.index_dir = index_dir
        self.policy = policy or VectorIndexPolicy()
        self.number = manifest.generation + 1 if base is not None else 1
        self.manifest = Manifest(**{**asdict(manifest), "generation": self.number})
        self.folder = index_dir / f"{_generation_name(self.number)}.tmp-{os.getpid()}"
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        self.previous = [base.folder.name] if base is not None else []
        """The generation this change replaces: kept beside the new one, so `rag check --repair` has an
        intact generation to roll back to if the new one is damaged later."""
        self.vectors: VectorStore
        if base is None:
            self.catalog = Catalog(self.folder / CATALOG_FILE)
            self.vectors = new_vector_store(
                index_dir,
                manifest.dimension,
                manifest.vector_store,
                milvus_uri=manifest.milvus_uri,
                milvus_collection=manifest.milvus_collection,
                milvus_index_type=manifest.milvus_index_type,
            )
        else:
            self.catalog = base.catalog.copy_to(self.folder / CATALOG_FILE)
            self.vectors = base.vectors.copy()
        self.missing_vectors = self._reconcile_vectors()
        """Ids of catalog chunks whose vectors a shared store lacks (the writer embeds them again)."""

    def _reconcile_vectors(self) -> np.ndarray:
        """Make a shared store (Milvus) match this catalog, the source of truth: drop vectors of chunks it
        lacks (left by a writer that died mid-commit), and return the ids of chunks that have no vector."""
        if not isinstance(self.vectors, SharedVectorStore):
            return np.zeros(0, dtype=np.int64)
        orphans, missing = self.vectors.reconcile(np.asarray(self.catalog.chunk_ids(), dtype=np.int64))
        if orphans or len(missing):
            log.warning(
                "Reconciled the vector store of %s with its catalog: %d vectors of chunks no longer indexed "
                "removed, %d chunks without a vector",
                self.index_dir,
                orphans,
                len(missing),
            )
        return missing

    def commit(self) -> Path:
        """Persist and make this generation live, atomically; returns its folder."""
        self.catalog.commit()
        self.manifest.documents = self.catalog.document_count()
        self.manifest.chunks = self.catalog.chunk_count()
        self.manifest.updated_at = time.time()
        lexical_files = build_lexical(self.catalog).save(self.folder / LEXICAL_DIR)
        self.catalog.close()
        rebuild = self.vectors.needs_rebuild(self.policy)
        if rebuild is not None:
            self.vectors = self.vectors.converted(rebuild)
        self.manifest.vector_index = self.vectors.kind
        _fault_point("before_vectors")
        self.vectors.save(self.folder / vectors_file(self.vectors))
        _fault_point("before_manifest")
        (self.folder / MANIFEST_FILE).write_text(json.dumps(asdict(self.manifest), indent=2))
        written = [self.folder / name for name in (CATALOG_FILE, vectors_file(self.vectors), MANIFEST_FILE)]
        for path in [*written, *lexical_files]:
            _fsync_path(path)
        _fsync_path(self.folder / LEXICAL_DIR)
        final = self.index_dir / _generation_name(self.number)
        if final.exists():
            shutil.rmtree(final)
        _fault_point("before_rename")
        os.replace(self.folder, final)
        _fsync_path(self.index_dir)
        _fault_point("before_pointer")
        write_current(self.index_dir, final)
        _fault_point("before_cleanup")
        if isinstance(self.vectors, SharedVectorStore):
            self.vectors.apply_removals()  # only now: the generation that lacks them is live
        _remove_old_generations(self.index_dir, keep={final.name, *self.previous})
        return final

    def abort(self) -> None:
        """Drop the change; the live generation is untouched."""
        self.catalog.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def build_lexical(catalog: Catalog) -> LexicalIndex:
    """BM25 over every chunk of the catalog, each read with its document's title."""
    rows = catalog.titled_chunk_texts()
    return LexicalIndex.build([r[0] for r in rows], [lexical_text(title, text) for _, title, text in rows])


def write_current(index_dir: Path, folder: Path) -> None:
    """Make generation `folder` live: write CURRENT beside it atomically (temporary file, fsync, rename)."""
    pointer_tmp = index_dir / f"{CURRENT_FILE}.tmp-{os.getpid()}"
    with open(pointer_tmp, "w") as handle:
        handle.write(folder.name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, index_dir / CURRENT_FILE)
    _fsync_path(index_dir)


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    """Delete superseded generations (but those in `keep`) and leftovers of crashed writes."""
    for entry in index_dir.iterdir():
        if entry.name in keep or not entry.name.startswith(("gen-", f"{CURRENT_FILE}.tmp")):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


class WriteLock:
    """An exclusive lock on an index folder, so two ingests never write at once."""

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / "LOCK"
        self.handle = None

    def __enter__(self) -> WriteLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            from rag.errors import RagError

            raise RagError(
                f"Another process is writing the index at {self.path.parent}; try again later."
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
