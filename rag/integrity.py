"""Verifying an index on disk (`rag check`) and rolling it back to an intact generation.

A generation is intact when its manifest reads, its catalog passes SQLite's integrity check, its vectors
load (its FAISS file, or the Milvus collection its pointer file names), its BM25 files load, and all of them
hold the same chunks (a Milvus collection serves every generation: its differences from a catalog are notes
the next ingest reconciles). An index is sound when `CURRENT` names an intact generation. When it does not,
the newest intact generation beside it (a commit keeps the one it replaced) is offered, and `roll_back`
makes it live with the same atomic pointer swap a commit uses.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError, IndexMissingError, RagError
from rag.index import (
    CATALOG_FILE,
    CURRENT_FILE,
    FORMAT_VERSION,
    GENERATION_NAME,
    MANIFEST_FILE,
    Manifest,
    WriteLock,
    pointed_generation,
    write_current,
)
from rag.lexical import LEXICAL_DIR, LexicalIndex
from rag.stores import FAISS_FILE, open_vector_store
from rag.stores.milvus_store import POINTER_FILE

_TABLES = ("files", "documents", "chunks")


@dataclass
class GenerationCheck:
    """What was found in one generation folder: `problems` lists "FILE: what is wrong"."""

    folder: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: Manifest | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.problems and self.manifest is not None

    def summary(self) -> str:
        """ "12 documents, 240 chunks" from what the files hold (or the manifest)."""
        documents = self.counts.get("documents", self.manifest.documents if self.manifest else 0)
        chunks = self.counts.get("chunks", self.manifest.chunks if self.manifest else 0)
        return f"{documents} documents, {chunks} chunks"


@dataclass
class IndexCheck:
    """The state of an index folder: what CURRENT names, and each complete generation, newest first."""

    index_dir: Path
    live: str | None = None
    current_problem: str | None = None
    generations: list[GenerationCheck] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        """Whether the folder holds an index at all (a CURRENT file or a complete generation)."""
        return self.live is not None or self.current_problem is not None or bool(self.generations)

    @property
    def live_generation(self) -> GenerationCheck | None:
        return next((g for g in self.generations if g.folder.name == self.live), None)

    @property
    def healthy(self) -> bool:
        live = self.live_generation
        return self.current_problem is None and live is not None and live.intact

    def fallback(self) -> GenerationCheck | None:
        """The newest intact generation that is not live, to roll back to; None when sound or none is."""
        if self.healthy:
            return None
        return next((g for g in self.generations if g.intact and g.folder.name != self.live), None)

    @property
    def only_lexical_damaged(self) -> bool:
        """Whether the live generation's only damage is in its BM25 files, which the catalog rebuilds."""
        live = self.live_generation
        return (
            self.current_problem is None
            and live is not None
            and bool(live.problems)
            and live.manifest is not None
            and all(problem.startswith(f"{LEXICAL_DIR}/") for problem in live.problems)
        )

    def advice(self) -> str:
        """What to do, in one or two sentences."""
        live = self.live_generation
        if not self.exists:
            return f"No index at {self.index_dir}. Build one with `rag ingest PATH --index {self.index_dir}`."
        if self.healthy and live is not None:
            return f"The index is sound: {live.folder.name} is live ({live.summary()})."
        if self.only_lexical_damaged:
            return (
                f"Only the BM25 files are damaged, and the catalog holds what they are built from: "
                f"`rag check --repair --index {self.index_dir}` rebuilds them into a new generation "
                f"(no document is lost)."
            )
        target = self.fallback()
        if target is not None:
            since = " (documents ingested after it was written must be ingested again)" if live else ""
            return (
                f"Generation {target.folder.name} is intact ({target.summary()}): `rag check --repair "
                f"--index {self.index_dir}` makes it live{since}. Do not delete the index folder."
            )
        return (
            f"No intact generation is left to roll back to: rebuild the index into a fresh folder with "
            f"`rag ingest PATH --index NEW_DIR`, then delete {self.index_dir}."
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (`rag check --json`)."""
        target = self.fallback()
        return {
            "index_dir": str(self.index_dir),
            "healthy": self.healthy,
            "live": self.live,
            "current_problem": self.current_problem,
            "generations": [
                {
                    "name": g.folder.name,
                    "live": g.folder.name == self.live,
                    "intact": g.intact,
                    "problems": g.problems,
                    "notes": g.notes,
                    "counts": g.counts,
                    "manifest": asdict(g.manifest) if g.manifest else None,
                }
                for g in self.generations
            ],
            "leftovers": self.leftovers,
            "fallback": target.folder.name if target else None,
            "advice": self.advice(),
        }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_manifest(generation: GenerationCheck) -> None:
    path = generation.folder / MANIFEST_FILE
    try:
        generation.manifest = Manifest(**json.loads(path.read_bytes()))
    except FileNotFoundError:
        generation.problems.append(f"{MANIFEST_FILE}: missing")
        return
    except (OSError, ValueError, TypeError) as exc:
        generation.problems.append(f"{MANIFEST_FILE}: not a readable manifest ({_first_line(exc)})")
        return
    if generation.manifest.format_version != FORMAT_VERSION:
        generation.problems.append(
            f"{MANIFEST_FILE}: format version {generation.manifest.format_version}; this rag reads "
            f"version {FORMAT_VERSION}"
        )


def _check_catalog(generation: GenerationCheck) -> set[int] | None:
    """Run SQLite's integrity check and count the catalog's rows; its chunk ids, or None when unreadable."""
    path = generation.folder / CATALOG_FILE
    if not path.is_file():
        generation.problems.append(f"{CATALOG_FILE}: missing")
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            verdict = [row[0] for row in db.execute("PRAGMA integrity_check(3)")]
            if verdict != ["ok"]:
                lines = [x for v in verdict for x in str(v).splitlines() if x.strip() and "***" not in x]
                generation.problems.append(
                    f"{CATALOG_FILE}: fails SQLite's integrity check ({'; '.join(lines[:3])})"
                )
                return None
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [name for name in _TABLES if name not in tables]
            if missing:
                generation.problems.append(f"{CATALOG_FILE}: lacks the table(s) {', '.join(missing)}")
                return None
            generation.counts["documents"] = int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
            ids = {int(row[0]) for row in db.execute("SELECT id FROM chunks")}
            generation.counts["chunks"] = len(ids)
            return ids
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        generation.problems.append(f"{CATALOG_FILE}: not a readable SQLite catalog ({_first_line(exc)})")
        return None


def _check_vectors(generation: GenerationCheck) -> tuple[str, set[int] | None, bool]:
    """Load the generation's vector store: (its file's name, its chunk ids or None when unreadable,
    whether the store is shared between generations, as a Milvus collection is)."""
    shared = (generation.folder / POINTER_FILE).is_file()
    name = POINTER_FILE if shared else FAISS_FILE
    try:
        store = open_vector_store(generation.folder)
        ids = {int(i) for i in store.ids()}
        generation.counts["vectors"] = len(ids) if shared else len(store)
    except RagError as exc:  # a damaged FAISS file, a Milvus that cannot be reached or of another dimension
        generation.problems.append(f"{name}: {exc}")
        return name, None, shared
    except (OSError, ValueError, KeyError, TypeError) as exc:  # mostly an unreadable pointer file
        what = "not a readable Milvus pointer file" if shared else "cannot be read"
        generation.problems.append(f"{name}: {what} ({_first_line(exc)})")
        return name, None, shared
    except Exception as exc:  # noqa: BLE001  # pymilvus' and gRPC's own errors while reading
        generation.problems.append(f"{name}: Milvus could not be read ({_first_line(exc)})")
        return name, None, shared
    manifest = generation.manifest
    if manifest is not None and store.dimension != manifest.dimension:
        generation.problems.append(
            f"{name}: holds {store.dimension}-dimensional vectors, but the manifest says {manifest.dimension}"
        )
    return name, ids, shared


def _check_lexical(generation: GenerationCheck) -> set[int] | None:
    folder = generation.folder / LEXICAL_DIR
    if not folder.is_dir():
        generation.notes.append(
            f"{LEXICAL_DIR}/: absent (an index written before BM25: rebuilt when searched)"
        )
        return None
    try:
        lexical = LexicalIndex.load(folder)
    except (IndexCorruptError, OSError) as exc:
        generation.problems.append(f"{LEXICAL_DIR}/: {exc}")
        return None
    generation.counts["lexical"] = len(lexical)
    return {int(i) for i in lexical.chunk_ids}


def check_generation(folder: Path) -> GenerationCheck:
    """Verify one generation folder: every file reads, and they hold the same chunks."""
    generation = GenerationCheck(folder)
    _check_manifest(generation)
    catalog_ids = _check_catalog(generation)
    vectors_name, vector_ids, vectors_shared = _check_vectors(generation)
    lexical_ids = _check_lexical(generation)
    manifest = generation.manifest
    if catalog_ids is not None and manifest is not None:
        if manifest.chunks != len(catalog_ids):
            generation.problems.append(
                f"{MANIFEST_FILE}: says {manifest.chunks} chunks, but {CATALOG_FILE} holds {len(catalog_ids)}"
            )
        if manifest.documents != generation.counts["documents"]:
            generation.problems.append(
                f"{MANIFEST_FILE}: says {manifest.documents} documents, but {CATALOG_FILE} holds "
                f"{generation.counts['documents']}"
            )
    if catalog_ids is not None and vector_ids is not None and vectors_shared:
        _note_shared_vectors(generation, vectors_name, vector_ids, catalog_ids)
        vector_ids = None
    for name, ids in ((vectors_name, vector_ids), (f"{LEXICAL_DIR}/", lexical_ids)):
        if catalog_ids is not None and ids is not None and ids != catalog_ids:
            generation.problems.append(
                f"{name}: holds {len(ids)} chunk ids, {len(ids - catalog_ids)} of them not in "
                f"{CATALOG_FILE}, which holds {len(catalog_ids)} "
                f"({len(catalog_ids - ids)} of them missing here)"
            )
    return generation


def _note_shared_vectors(
    generation: GenerationCheck, name: str, ids: set[int], catalog_ids: set[int]
) -> None:
    """A Milvus collection serves every generation, and a commit writes new vectors before its generation
    goes live and deletes removed ones after: vectors the catalog lacks (orphans) and catalog chunks with
    no vector are what an interrupted or older commit leaves, which the next ingest reconciles (notes)."""
    orphans, missing = len(ids - catalog_ids), len(catalog_ids - ids)
    if orphans:
        generation.notes.append(
            f"{name}: Milvus holds {orphans} vector(s) that {CATALOG_FILE} lacks (never searched; the next "
            f"`rag ingest` deletes them)"
        )
    if missing:
        generation.notes.append(
            f"{name}: {missing} chunk(s) of {CATALOG_FILE} have no vector in Milvus (not found by vector "
            f"search until the next `rag ingest` embeds them again)"
        )


def check_index(index_dir: Path) -> IndexCheck:
    """Verify what CURRENT names and every complete generation in `index_dir`."""
    check = IndexCheck(index_dir)
    if not index_dir.is_dir():
        return check
    try:
        raw: bytes | None = (index_dir / CURRENT_FILE).read_bytes()
    except FileNotFoundError:
        raw = None
    except OSError as exc:
        raw, check.current_problem = None, f"cannot be read ({exc.strerror or exc})"
    if raw is not None:
        folder, problem = pointed_generation(index_dir, raw)
        if folder is not None:
            check.live = folder.name
        else:
            check.current_problem = problem
    check.generations = [check_generation(folder) for folder in generation_folders(index_dir)]
    check.leftovers = sorted(
        entry.name
        for entry in index_dir.iterdir()
        if entry.name.startswith(("gen-", f"{CURRENT_FILE}.tmp"))
        and not GENERATION_NAME.fullmatch(entry.name)
    )
    if raw is None and check.generations and check.current_problem is None:
        check.current_problem = "is missing"
    return check


def newest_intact_generation(index_dir: Path, exclude: Path | None = None) -> GenerationCheck | None:
    """The newest complete generation in `index_dir` that passes every check, other than `exclude`."""
    for folder in generation_folders(index_dir):
        if folder != exclude:
            generation = check_generation(folder)
            if generation.intact:
                return generation
    return None


def generation_folders(index_dir: Path) -> list[Path]:
    """The complete generation folders in `index_dir`, newest first."""
    if not index_dir.is_dir():
        return []
    folders = [e for e in index_dir.iterdir() if e.is_dir() and GENERATION_NAME.fullmatch(e.name)]
    return sorted(folders, key=lambda folder: int(folder.name[4:]), reverse=True)


def roll_back(index_dir: Path) -> GenerationCheck | None:
    """Repair a damaged index, holding the write lock: rebuild damaged BM25 files into a new generation
    (from the intact catalog), else make the newest intact generation live (an atomic pointer swap).
    Returns the generation made live; None when the index was sound. IndexCorruptError when nothing
    intact is left."""
    with WriteLock(index_dir):
        check = check_index(index_dir)
        if not check.exists:
            raise IndexMissingError(check.advice())
        if check.healthy:
            return None
        if check.only_lexical_damaged:
            from rag.index import Index

            live = Index.open(index_dir)  # the BM25 files load lazily: opening does not read them
            try:
                rebuilt = live.begin().commit()  # a commit rebuilds BM25 from the catalog
            finally:
                live.close()
            return check_generation(rebuilt)
        target = check.fallback()
        if target is None:
            raise IndexCorruptError(f"The index at {index_dir} cannot be repaired. {check.advice()}")
        write_current(index_dir, target.folder)
        return target


def verify_live(index_dir: Path) -> None:
    """Check every file of the live generation (`rag serve` does, before it serves): IndexCorruptError
    naming what is damaged and what to do; nothing when sound or when there is no index."""
    from rag.index import read_current, recovery_advice

    folder = read_current(index_dir)
    if folder is None:
        return
    generation = check_generation(folder)
    if generation.problems:
        raise IndexCorruptError(
            f"The index at {index_dir} is damaged: {folder.name}/"
            f"{'; '.join(generation.problems)}. {recovery_advice(index_dir, folder)}"
        )
