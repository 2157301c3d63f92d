"""The facade with the real packaged embedder (slow): ingest, incremental updates, pruning, removal,
bad files, retrieval, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder

from rag.assistant import Assistant
from rag.config import Settings
from rag.errors import DocumentNotFoundError, IndexIncompatibleError, IndexMissingError, InvalidInputError

pytestmark = pytest.mark.slow


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcano.md").write_text(
        "# Volcanoes\n\nMount Erebus is the southernmost active volcano on Earth, in Antarctica.\n\n"
        "## Lava lake\n\nErebus holds one of the few long-lived lava lakes in the world.\n"
    )
    (folder / "bread.txt").write_text(
        "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.\n"
    )
    (folder / "notes.html").write_text(
        "<html><head><title>Bees</title></head><body><h1>Bees</h1><p>Honey bees dance to tell "
        "their hive where flowers are.</p></body></html>"
    )
    return folder


@pytest.fixture()
def assistant(tmp_path: Path, embedder) -> Assistant:
    return Assistant(
        Settings(index_dir=tmp_path / "index", chunk_tokens=64, chunk_overlap=8), embedder=embedder
    )


def top_document(assistant: Assistant, question: str) -> str:
    return assistant.retrieve(question, 1)[0].chunk.doc_id


def test_ingest_then_retrieve_finds_the_right_document(assistant: Assistant, corpus: Path) -> None:
    report = assistant.ingest([corpus])
    assert len(report.added) == 3 and not report.failed
    assert top_document(assistant, "Which volcano is furthest south?").endswith("volcano.md")
    assert top_document(assistant, "How does sourdough rise?").endswith("bread.txt")
    passage = assistant.retrieve("How do bees communicate flower locations?", 1)[0]
    assert passage.title == "Bees"
    document = assistant.document(passage.chunk.doc_id)
    assert document.text[passage.chunk.start : passage.chunk.end] == passage.chunk.text


def test_reingest_skips_unchanged_and_replaces_changed(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    generation = assistant.index().manifest.generation
    again = assistant.ingest([corpus])
    assert len(again.unchanged) == 3 and not again.added and not again.updated
    assert assistant.index().manifest.generation == generation, "a no-op ingest writes nothing"

    (corpus / "bread.txt").write_text("Rye bread is dense because rye has little gluten.\n")
    changed = assistant.ingest([corpus])
    assert [Path(p).name for p in changed.updated] == ["bread.txt"]
    for passage in assistant.retrieve("sourdough wild yeast lactobacilli", 10):
        assert "Sourdough" not in passage.chunk.text, "a stale chunk answered"
    index = assistant.index()
    assert len(index.vectors) == index.catalog.chunk_count()


def test_prune_drops_vanished_files(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    (corpus / "notes.html").unlink()
    report = assistant.ingest([corpus], prune=True)
    assert [Path(p).name for p in report.removed] == ["notes.html"]
    assert all(not d.id.endswith("notes.html") for d in assistant.documents())
    assert len(assistant.index().vectors) == assistant.index().catalog.chunk_count()


def test_remove_documents(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    doc_id = next(d.id for d in assistant.documents() if d.id.endswith("bread.txt"))
    assistant.remove_documents([doc_id])
    assert len(assistant.documents()) == 2
    with pytest.raises(DocumentNotFoundError):
        assistant.remove_documents(["no-such-document"])


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(assistant: Assistant, corpus: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (corpus / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e is a dessert.".encode("latin-1"))
    report = assistant.ingest([corpus, corpus / "missing.md"])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert set(reasons) == {"empty.txt", "binary.txt", "broken.pdf", "missing.md"}
    assert "empty" in reasons["empty.txt"] and "binary" in reasons["binary.txt"]
    assert "no such file" in reasons["missing.md"]
    assert len(report.added) == 4, "the good files and the latin-1 one are indexed"
    assert top_document(assistant, "crème brûlée dessert").endswith("latin1.txt")


def test_oversized_file_is_skipped(tmp_path: Path, embedder, corpus: Path) -> None:
    (corpus / "huge.txt").write_text("word " * 300_000)
    assistant = Assistant(Settings(index_dir=tmp_path / "i", max_file_mb=1), embedder=embedder)
    report = assistant.ingest([corpus])
    assert [Path(f.path).name for f in report.failed] == ["huge.txt"]
    assert "larger than" in report.failed[0].reason


def test_missing_index_and_bad_questions_are_clear_errors(assistant: Assistant, corpus: Path) -> None:
    with pytest.raises(IndexMissingError, match="rag ingest"):
        assistant.retrieve("anything")
    assistant.ingest([corpus])
    with pytest.raises(InvalidInputError, match="empty"):
        assistant.ask("   ")
    with pytest.raises(InvalidInputError, match="k must be"):
        assistant.retrieve("volcano", k=0)


def test_irrelevant_question_abstains_without_the_model(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest([corpus])
    answer = assistant.ask("What is the airspeed velocity of an unladen swallow in the 1975 film?")
    assert answer.abstained and not answer.citations
    assert "generation_seconds" not in answer.timings
    assert answer.passages, "the nearest passages are still shown"


def test_index_built_with_another_embedder_is_refused(tmp_path: Path, embedder, corpus: Path) -> None:
    Assistant(Settings(index_dir=tmp_path / "i"), embedder=embedder).ingest([corpus])
    other = Assistant(Settings(index_dir=tmp_path / "i"), embedder=BagOfWordsEmbedder())
    with pytest.raises(IndexIncompatibleError, match="rebuild|Rebuild"):
        other.retrieve("volcano")


def test_prune_only_touches_the_ingested_paths(assistant: Assistant, corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "kept.txt").write_text("Penguins live in the southern hemisphere.\n")
    assistant.ingest([corpus, other])
    (other / "kept.txt").unlink()
    (corpus / "bread.txt").unlink()
    report = assistant.ingest([corpus], prune=True)
    assert [Path(p).name for p in report.removed] == ["bread.txt"]
    assert any(d.id.endswith("kept.txt") for d in assistant.documents())
