"""The hostile corpus (tests/hostile/make_corpus.py) through the real Ingestor: no crash, every refused file
named with its reason (and the setting, for a limit), every good file indexed, memory bounded."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder
from hostile.make_corpus import PeakMemory, Sizes, make_corpus
from typer.testing import CliRunner

from rag.assistant import Assistant
from rag.cli import app
from rag.config import Settings
from rag.ingest import display_path

# Small bombs under small limits: the same refusals as the defaults give the sizes, in seconds.
SIZES = Sizes(zip_bomb_mb=48, brackets_mb=1.0, many_chunks_words=300_000, memory_hog_mb=24)
LIMITS = {
    "parse_timeout_seconds": 3.0,
    "max_parse_memory_mb": 256,
    "max_decompressed_mb": 32.0,
    "max_chunks_per_document": 1000,
}


@pytest.mark.slow
def test_hostile_corpus_is_ingested_without_a_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    entries = make_corpus(corpus, SIZES)
    assistant = Assistant(Settings(index_dir=tmp_path / "index", **LIMITS), embedder=BagOfWordsEmbedder())
    started = time.perf_counter()
    with PeakMemory() as memory:
        report = assistant.ingest([corpus])
    seconds = time.perf_counter() - started

    failed = {f.path: f.reason for f in report.failed}
    indexed = set(report.added)
    for entry in entries:
        name = display_path(corpus / os.fsdecode(entry.name))
        link = display_path(corpus) + os.sep + os.fsdecode(entry.name)
        if entry.expect == "indexed":
            assert name in indexed, f"{name!a} not indexed: {failed.get(name)}"
        elif entry.expect == "ignored":
            assert name not in failed and link not in failed
        else:
            reason = failed.get(name) or failed.get(link)
            assert reason is not None and entry.expect in reason, f"{name!a}: {reason!r}"
            if entry.expect.startswith("setting"):
                assert re.search(r"the [\d.,]+ ?\S* limit \(setting \w+\)", reason), reason
    expected_failures = [e for e in entries if e.expect not in ("indexed", "ignored")]
    assert len(report.failed) == len(expected_failures), sorted(failed)
    assert "memory-hog" in " ".join(failed) and "brackets" in " ".join(failed)

    assert seconds < 60, "a hostile file costs at most its time budget"
    assert memory.worker_mb < LIMITS["max_parse_memory_mb"]
    assert memory.total_mb - memory.baseline_mb < 2048, "what the ingest added, beside models loaded before"
    documents = {d.id for d in assistant.documents()}
    assert display_path(corpus / "good.txt") in documents
    assert assistant.index().catalog.chunk_count() == report.chunks_added


@pytest.mark.slow
def test_rag_ingest_prints_the_names_of_skipped_files_as_they_are(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "[bold]shown as is.txt").write_bytes(b"")
    (docs / "new\nline.md").write_bytes(b"")
    (docs / "fine.txt").write_text("Lava flows.\n")
    result = CliRunner().invoke(app, ["ingest", str(docs), "--index", str(tmp_path / "index")])
    assert result.exit_code == 1, result.output
    assert "[bold]shown as is.txt: empty file" in result.output
    assert "new\\nline.md: empty file" in result.output
