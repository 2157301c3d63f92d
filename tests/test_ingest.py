"""The Ingestor with a word-count embedder (fast): each file read once, incremental updates, failures."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import time
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder

from rag.assistant import Assistant
from rag.chunking import Chunker
from rag.config import Settings
from rag.errors import InvalidInputError
from rag.ingest import discover_files, display_path
from rag.parsers.pool import TokenizerCounter, portable_chunker
from rag.types import Document

DOCS = Path(__file__).resolve().parent.parent / "documents"


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
        if path.parent == corpus:
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


def test_a_document_id_with_a_nul_character_is_invalid_input(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    bread = display_path(corpus / "bread.txt")
    with pytest.raises(InvalidInputError, match="NUL character"):
        assistant.remove_documents([bread + "\x00"])
    assert sorted(Path(d.id).name for d in assistant.documents()) == ["bread.txt", "volcano.md"]


def test_a_file_name_that_is_not_utf8_is_indexed_under_a_printable_name(
    assistant: Assistant, corpus: Path
) -> None:
    raw = os.fsencode(corpus) + b"/a\xff.txt"
    with open(raw, "wb") as handle:
        handle.write(b"The yeast in a\xff is bread yeast.\n")
    report = assistant.ingest([corpus])
    assert not report.failed
    [shown] = [p for p in report.added if p.endswith(".txt") and "bread" not in p]
    assert shown.endswith("a\\xff.txt"), "the undecodable byte is shown as an escape"
    listed = {d.id: d for d in assistant.documents()}
    assert listed[shown].title == "a\\xff" and listed[shown].file_path.endswith("a\\xff.txt")
    again = assistant.ingest([corpus])
    assert shown in again.unchanged, "the stored key names the same file again (lossless)"
    os.unlink(raw)
    assert shown in assistant.ingest([corpus], prune=True).removed


def test_deeply_nested_html_does_not_stop_the_batch(assistant: Assistant, corpus: Path) -> None:
    (corpus / "nested.html").write_text("<html><body>" + "<div>" * 1000 + "deep lava" + "</div>" * 1000)
    (corpus / "bomb.html").write_text("<div>" * 100_000 + "x")
    report = assistant.ingest([corpus])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert set(reasons) == {"bomb.html"} and "setting max_nesting_depth" in reasons["bomb.html"]
    assert sorted(Path(p).name for p in report.added) == ["bread.txt", "nested.html", "volcano.md"]
    assert assistant.document(display_path(corpus / "nested.html")).text == "deep lava"


def test_special_entries_of_a_folder_are_skipped_with_a_line_each(assistant: Assistant, corpus: Path) -> None:
    os.mkfifo(corpus / "pipe.txt")
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    (corpus / "dangling.txt").symlink_to(corpus / "missing.txt")
    (corpus / "folder-link").symlink_to(corpus)
    report = assistant.ingest([corpus])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons == {
        "pipe.txt": "not a regular file: a FIFO (named pipe)",
        "loop.md": "symbolic link loop: the link leads back to itself",
        "dangling.txt": "broken symbolic link: its target does not exist",
        "folder-link": "symbolic link to a folder: not followed (name the folder itself to index it)",
    }
    assert sorted(Path(p).name for p in report.added) == ["bread.txt", "volcano.md"]
    named = assistant.ingest([corpus / "pipe.txt"])
    assert [f.reason for f in named.failed] == ["not a regular file: a FIFO (named pipe)"]


def test_a_file_that_parses_too_long_is_stopped_and_named_with_its_setting(
    tmp_path: Path, corpus: Path
) -> None:
    settings = Settings(index_dir=tmp_path / "index", parse_timeout_seconds=2.0)
    assistant = Assistant(settings, embedder=BagOfWordsEmbedder())
    (corpus / "brackets.md").write_text("[" * 1_000_000)
    started = time.perf_counter()
    report = assistant.ingest([corpus])
    assert time.perf_counter() - started < 60
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons == {
        "brackets.md": "stopped: parsing took longer than the 2 s limit (setting parse_timeout_seconds)"
    }
    assert sorted(Path(p).name for p in report.added) == ["bread.txt", "volcano.md"]


def test_a_document_of_too_many_chunks_is_refused_with_its_setting(tmp_path: Path, corpus: Path) -> None:
    settings = Settings(
        index_dir=tmp_path / "index", max_chunks_per_document=3, chunk_tokens=16, chunk_overlap=0
    )
    assistant = Assistant(settings, embedder=BagOfWordsEmbedder())
    (corpus / "long.txt").write_text("Bread rises slowly. " * 100)
    report = assistant.ingest([corpus])
    [failure] = report.failed
    assert Path(failure.path).name == "long.txt"
    assert re.fullmatch(
        r"\d+ chunks, more than the 3 chunks limit \(setting max_chunks_per_document\)", failure.reason
    )


def test_jsonl_ids_are_namespaced_by_their_file(assistant: Assistant, corpus: Path) -> None:
    genuine = display_path(corpus / "bread.txt")
    claim = {"_id": genuine, "title": "Impostor", "text": "Bread is made of lava."}
    (corpus / "attack.jsonl").write_text(
        json.dumps(claim) + "\n" + json.dumps({"_id": "1", "text": "Honey."})
    )
    (corpus / "other.jsonl").write_text(json.dumps({"_id": "1", "text": "Ice."}) + "\n")
    report = assistant.ingest([corpus])
    assert not report.failed and len(report.added) == 4
    assert assistant.document(genuine).text == "Bread rises because yeast ferments the dough.\n"
    ids = {d.id for d in assistant.documents()}
    attack, other = display_path(corpus / "attack.jsonl"), display_path(corpus / "other.jsonl")
    assert {f"{attack}#{genuine}", f"{attack}#1", f"{other}#1", genuine} <= ids
    assert assistant.document(f"{other}#1").text == "Ice."


def test_workers_chunk_with_the_bare_tokenizer_exactly_as_the_embedder_does(embedder, tmp_path: Path) -> None:
    text = (DOCS / "rag-user-guide.md").read_text() + "\n\n" + "supercalifragilistic" * 300
    document = Document(id="g", source="g", title="Guide", text=text)
    chunker = Chunker(embedder, max_tokens=64, overlap_tokens=8)
    portable = portable_chunker(chunker)
    assert portable is not None and isinstance(portable.counter, TokenizerCounter)
    copy = pickle.loads(pickle.dumps(portable))
    assert copy.chunk(document) == chunker.chunk(document)
