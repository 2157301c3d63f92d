"""SQLite catalog: files, documents and chunks (text, offsets, pages, headings), changed in transactions."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.parsers.common import printable_name
from rag.types import Chunk, Document, PageSpan, Section

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    file_path TEXT NOT NULL REFERENCES files(path),
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    pages TEXT NOT NULL,
    sections TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_file ON documents(file_path);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(id),
    ord INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER,
    heading_path TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
"""


def _stored_path(path: str) -> str | bytes:
    """A file path as SQLite keeps it: text, or the name's raw bytes when it is not UTF-8 (lossless)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _loaded_path(value: str | bytes) -> str:
    """The path `_stored_path` stored, as Python names the file again."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@dataclass(frozen=True)
class FileRecord:
    """An ingested file: its absolute path, content hash and the documents it produced."""

    path: str
    content_hash: str
    size: int
    ingested_at: float


@dataclass(frozen=True)
class DocumentSummary:
    """A document as listed by `rag docs list`."""

    id: str
    title: str
    file_path: str
    chunks: int
    characters: int


class Catalog:
    """The metadata and text of an index, in one SQLite file."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.db = sqlite3.connect(path, check_same_thread=False)
            self.db.executescript(_SCHEMA)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def copy_to(self, path: Path) -> Catalog:
        """A writable copy of this catalog at `path` (SQLite's online backup)."""
        target = sqlite3.connect(path)
        self.db.backup(target)
        target.close()
        return Catalog(path)

    def commit(self) -> None:
        self.db.commit()

    # Files
    def file(self, path: str) -> FileRecord | None:
        row = self.db.execute("SELECT * FROM files WHERE path = ?", (_stored_path(path),)).fetchone()
        return self._file_record(row) if row else None

    def files(self) -> list[FileRecord]:
        return [self._file_record(r) for r in self.db.execute("SELECT * FROM files ORDER BY path")]

    @staticmethod
    def _file_record(row: sqlite3.Row) -> FileRecord:
        return FileRecord(**{**dict(row), "path": _loaded_path(row["path"])})

    def put_file(self, record: FileRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files (path, content_hash, size, ingested_at) VALUES (?, ?, ?, ?)",
            (_stored_path(record.path), record.content_hash, record.size, record.ingested_at),
        )

    def remove_file(self, path: str) -> list[int]:
        """Delete a file with its documents and chunks; returns the removed chunk ids."""
        key = _stored_path(path)
        chunk_ids = [
            r[0]
            for r in self.db.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON c.doc_id = d.id WHERE d.file_path = ?", (key,)
            )
        ]
        self.db.execute(
            "DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE file_path = ?)", (key,)
        )
        self.db.execute("DELETE FROM documents WHERE file_path = ?", (key,))
        self.db.execute("DELETE FROM files WHERE path = ?", (key,))
        return chunk_ids

    # Documents
    def document_owner(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT file_path FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return _loaded_path(row[0]) if row else None

    def add_document(self, document: Document, file_path: str) -> None:
        self.db.execute(
            "INSERT INTO documents (id, file_path, source, title, text, pages, sections, content_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document.id,
                _stored_path(file_path),
                document.source,
                document.title,
                document.text,
                json.dumps([[p.page, p.start, p.end] for p in document.pages]),
                json.dumps([[list(s.path), s.start, s.end] for s in document.sections]),
                document.content_hash,
            ),
        )

    def document(self, doc_id: str) -> Document | None:
        row = self.db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        return Document(
            id=row["id"],
            source=row["source"],
            title=row["title"],
            text=row["text"],
            pages=tuple(PageSpan(*p) for p in json.loads(row["pages"])),
            sections=tuple(Section(tuple(s[0]), s[1], s[2]) for s in json.loads(row["sections"])),
            content_hash=row["content_hash"],
        )

    def documents(self) -> list[DocumentSummary]:
        rows = self.db.execute(
            "SELECT d.id, d.title, d.file_path, length(d.text) AS characters, "
            "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS chunks FROM documents d ORDER BY d.id"
        )
        return [
            DocumentSummary(**{**dict(r), "file_path": printable_name(_loaded_path(r["file_path"]))})
            for r in rows
        ]

    def document_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM documents").fetchone()[0])

    # Chunks
    def add_chunks(self, chunks: Sequence[Chunk]) -> list[int]:
        """Insert chunks (in order per document) and return their new ids."""
        ids = []
        ordinal: dict[str, int] = {}
        for chunk in chunks:
            n = ordinal.get(chunk.doc_id, 0)
            ordinal[chunk.doc_id] = n + 1
            cursor = self.db.execute(
                "INSERT INTO chunks (doc_id, ord, start, end, page, heading_path, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    chunk.doc_id,
                    n,
                    chunk.start,
                    chunk.end,
                    chunk.page,
                    json.dumps(list(chunk.heading_path)),
                    chunk.text,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        """Chunks by id (ids not in the catalog are absent from the result)."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(f"SELECT * FROM chunks WHERE id IN ({marks})", wanted)
        return {
            r["id"]: Chunk(
                id=r["id"],
                doc_id=r["doc_id"],
                text=r["text"],
                start=r["start"],
                end=r["end"],
                page=r["page"],
                heading_path=tuple(json.loads(r["heading_path"])),
            )
            for r in rows
        }

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def chunk_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM chunks ORDER BY id")]

    def titled_chunk_texts(self) -> list[tuple[int, str, str]]:
        """(chunk id, document title, chunk text) of every chunk, by id: what the lexical index reads."""
        rows = self.db.execute(
            "SELECT c.id, d.title, c.text FROM chunks c JOIN documents d ON c.doc_id = d.id ORDER BY c.id"
        )
        return [(int(r[0]), r[1], r[2]) for r in rows]

    def chunk_ids_matching(
        self, doc_ids: Iterable[str] | None = None, path_prefix: str | None = None
    ) -> list[int]:
        """Ids of the chunks of the given documents and/or of those whose source or file has a prefix."""
        clauses: list[str] = []
        params: dict[str, str] = {}
        if doc_ids is not None:
            params.update({f"d{n}": doc_id for n, doc_id in enumerate(doc_ids)})
            clauses.append(f"d.id IN ({','.join(':' + name for name in params)})" if params else "0")
        if path_prefix is not None:
            params["prefix"] = path_prefix
            clauses.append(
                "(substr(d.source, 1, length(:prefix)) = :prefix"
                " OR substr(d.file_path, 1, length(:prefix)) = :prefix)"
            )
        where = " AND ".join(clauses) or "1"
        query = f"SELECT c.id FROM chunks c JOIN documents d ON c.doc_id = d.id WHERE {where}"
        rows = self.db.execute(query, params)
        return [int(r[0]) for r in rows]

    def document_ids(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The ids of the documents each name names (its id, its source or its file's path); [] for none."""
        found: dict[str, list[str]] = {}
        for name in names:
            rows = self.db.execute(
                "SELECT id FROM documents WHERE id = :n OR source = :n OR file_path = :n ORDER BY id",
                {"n": name},
            )
            found[name] = [r[0] for r in rows]
        return found

    def titles(self, doc_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(title, source) by document id."""
        wanted = list(set(doc_ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(f"SELECT id, title, source FROM documents WHERE id IN ({marks})", wanted)
        return {r["id"]: (r["title"], r["source"]) for r in rows}
