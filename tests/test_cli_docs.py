"""`rag docs list` lines: one line per document, whatever its file is called."""

from __future__ import annotations

from pathlib import Path

from fakes import BagOfWordsEmbedder

from rag.assistant import Assistant
from rag.cli.docs import document_line
from rag.config import Settings


def test_a_newline_in_a_file_name_does_not_split_its_line(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "two\nlines.txt").write_text("Bread and honey.\n")
    (docs / "tab\there.md").write_text("# Lava\n\nThe volcano.\n")
    assistant = Assistant(Settings(index_dir=tmp_path / "index"), embedder=BagOfWordsEmbedder())
    assert not assistant.ingest([docs]).failed
    lines = [document_line(d) for d in assistant.documents()]
    assert all("\n" not in line and line.count("\t") == 2 for line in lines)
    assert sorted(line.split("\t")[1] for line in lines) == ["Lava", "two\\nlines"]
    assert any(line.split("\t")[0].endswith("two\\nlines.txt") for line in lines)
