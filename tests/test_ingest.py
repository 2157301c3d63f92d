"""The Ingestor with a word-count embedder (fast): each file read once, incremental updates, failures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder

from rag.assistant import Assistant
from rag.config import Settings
from rag.ingest import discover_files, display_path


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcano.md").write_text("# Volcano\n\nThe volcano has a lava lake.\n")
    (folder / "bread.txt").write_text("Bread rises because yeast ferments the dough.\n")
    (folder / ".hidden.txt").write_text("Never indexed.\n")
    return folder


@pytest.fixture()
def assistant(tmp_path: Path) -> Assistant:
    return Assistant(Settings(index_dir=tmp_path / "index"), embedder=BagOfWordsEmbedder())


def test_discover_skips_hidden_files_and_reports_missing_paths(corpus: Path) -> None:
    files, failures = discover_files([corpus, corpus / "gone.md"])
    assert [f.name for f in files] == ["bread.txt", "volcano.md"]
    assert [(Path(f.path).name, f.reason) for f in failures] == [("gone.md", "no such file or folder")]


def test_each_file_is_read_once_per_ingest(
    assistant: Assistant, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    read_bytes = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path.name)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    assistant.ingest([corpus])
    assert sorted(reads) == ["bread.txt", "volcano.md"]
    reads.clear()
    (corpus / "bread.txt").write_text("Rye bread is dense.\n")
    report = assistant.ingest([corpus])
    assert sorted(reads) == ["bread.txt", "volcano.md"], "unchanged files are read to hash them, once"
    assert [Path(p).name for p in report.updated] == ["bread.txt"] and len(report.unchanged) == 1


def test_stored_hash_is_the_hash_of_the_bytes_read(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    record = assistant.index().catalog.file(str((corpus / "bread.txt").resolve()))
    assert record is not None
    data = (corpus / "bread.txt").read_bytes()
    assert record.content_hash == hashlib.sha256(data).hexdigest() and record.size == len(data)
    document = assistant.document(display_path(corpus / "bread.txt"))
    assert document.content_hash == record.content_hash


def test_failures_are_reported_and_the_rest_committed(
    assistant: Assistant, corpus: Path, tmp_path: Path
) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 not a pdf")
    report = assistant.ingest([corpus])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons["empty.txt"] == "empty file" and reasons["broken.pdf"].startswith("corrupt")
    assert sorted(Path(p).name for p in report.added) == ["bread.txt", "volcano.md"]
    assert assistant.index().manifest.documents == 2


def test_progress_counts_files_chunks_and_embedded_chunks(assistant: Assistant, corpus: Path) -> None:
    seen: dict[str, int] = {}
    assistant.ingest([corpus], progress=lambda kind, n: seen.update({kind: seen.get(kind, 0) + n}))
    assert seen["files"] == 2 and seen["chunks"] == seen["embedded"] > 0


def test_remove_and_prune(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    bread = display_path(corpus / "bread.txt")
    assert assistant.remove_documents([bread]) == [bread]
    assert [Path(d.id).name for d in assistant.documents()] == ["volcano.md"]
    (corpus / "volcano.md").unlink()
    report = assistant.ingest([corpus], prune=True)
    assert [Path(p).name for p in report.removed] == ["volcano.md"] and report.added == [bread]
    assert [d.id for d in assistant.documents()] == [bread]
