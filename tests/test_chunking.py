"""The chunker keeps offsets exact, covers the whole document and respects the token budget."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chunking import Chunker, WordCounter
from rag.types import Document, PageSpan, Section

WORDS = st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon", "Zeta.", "eta!", "theta?", "x", "42"])
SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "\t", "  \n \n"])


@st.composite
def documents(draw: st.DrawFn) -> Document:
    pieces = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=0, max_size=300))
    text = "".join(w + s for w, s in pieces)
    cuts = sorted(set(draw(st.lists(st.integers(0, max(len(text) - 1, 0)), max_size=4))))
    sections = tuple(
        Section((f"H{i}",), start, cuts[i + 1] if i + 1 < len(cuts) else len(text))
        for i, start in enumerate(cuts)
    )
    return Document(id="doc", source="doc", title="doc", text=text, sections=sections)


@settings(max_examples=300, deadline=None)
@given(documents(), st.integers(1, 40), st.integers(0, 39))
def test_offsets_map_back_and_chunks_cover_the_document(document: Document, size: int, overlap: int) -> None:
    overlap = min(overlap, size - 1)
    chunks = Chunker(WordCounter(), max_tokens=size, overlap_tokens=overlap).chunk(document)
    covered = [False] * len(document.text)
    for chunk in chunks:
        assert chunk.text == document.text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip() and chunk.text
        assert len(chunk.text.split()) <= size
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    for i, char in enumerate(document.text):
        assert covered[i] or char.isspace(), f"character {i} ({char!r}) is in no chunk"
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


def test_chunks_break_at_headings_and_keep_their_heading_path() -> None:
    text = "# Guide\n\nIntro sentence one. Intro two.\n\n## Install\n\nRun setup. It takes minutes.\n"
    install = text.index("## Install")
    document = Document(
        id="g",
        source="g",
        title="Guide",
        text=text,
        sections=(Section(("Guide",), 0, len(text)), Section(("Guide", "Install"), install, len(text))),
    )
    chunks = Chunker(WordCounter(), max_tokens=8, overlap_tokens=0).chunk(document)
    install_chunk = next(c for c in chunks if c.start == text.index("Run setup."))
    assert install_chunk.heading_path == ("Guide", "Install")
    assert chunks[0].heading_path == ("Guide",) and chunks[0].text.startswith("Intro sentence one.")
    assert not any("#" in c.text or "Install" in c.text for c in chunks), "headings are context, not text"
    assert all(c.start > install or c.end < install for c in chunks)


def test_markdown_headings_are_shown_apart_from_the_passages(tmp_path) -> None:  # noqa: ANN001
    from rag.parsers import parse_file

    path = tmp_path / "volcano.md"
    path.write_text(
        "# Volcanoes\n\nErebus is in Antarctica.\n\n## Lava lake\n\nErebus holds a lava lake.\n\n"
        "Setext title\n------------\n\nIt has been active since 1972.\n"
    )
    (document,) = parse_file(path)
    chunks = Chunker(WordCounter(), max_tokens=6, overlap_tokens=0).chunk(document)
    assert [c.text for c in chunks] == [
        "Erebus is in Antarctica.",
        "Erebus holds a lava lake.",
        "It has been active since 1972.",
    ]
    assert [c.heading_path[-1] for c in chunks] == ["Volcanoes", "Lava lake", "Setext title"]


def test_a_document_of_only_a_heading_keeps_it() -> None:
    text = "# Release notes"
    document = Document("r", "r", "r", text, sections=(Section(("Release notes",), 2, len(text)),))
    assert [c.text for c in Chunker(WordCounter(), max_tokens=8, overlap_tokens=0).chunk(document)] == [
        "# Release notes"
    ]


def test_passages_start_where_sentences_start_in_wrapped_text() -> None:
    sentences = [
        f"Sentence {i} runs on for quite a few words before it finally stops here." for i in range(12)
    ]
    wrapped = "\n".join(line for s in sentences for line in (s[:30], s[30:]))  # hard-wrapped, as in PDFs
    document = Document(id="w", source="w", title="w", text=wrapped)
    chunks = Chunker(WordCounter(), max_tokens=30, overlap_tokens=14).chunk(document)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.startswith("Sentence ") and chunk.text.endswith("stops here."), chunk.text


def test_a_sentence_over_the_budget_is_cut_at_its_line_breaks_first() -> None:
    items = "\n".join(f"- item {i} alpha beta" for i in range(10))  # no stop: one long unit
    document = Document(id="l", source="l", title="l", text=items)
    chunks = Chunker(WordCounter(), max_tokens=12, overlap_tokens=0).chunk(document)
    assert len(chunks) > 1 and all(c.text.startswith("- item ") for c in chunks)
    assert all(len(c.text.split()) <= 12 for c in chunks)


def test_overlap_repeats_trailing_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    document = Document(id="d", source="d", title="d", text=text)
    chunks = Chunker(WordCounter(), max_tokens=20, overlap_tokens=5).chunk(document)
    assert len(chunks) > 2
    for previous, following in zip(chunks, chunks[1:]):
        assert following.start < previous.end, "consecutive chunks should overlap"


def test_pages_are_carried_to_chunks() -> None:
    text = "Page one text here.\n\nPage two text here."
    second = text.index("Page two")
    document = Document(
        id="p",
        source="p",
        title="p",
        text=text,
        pages=(PageSpan(1, 0, second), PageSpan(2, second, len(text))),
    )
    chunks = Chunker(WordCounter(), max_tokens=4, overlap_tokens=0).chunk(document)
    assert [c.page for c in chunks] == [1, 2]


def test_real_tokenizer_budget(embedder) -> None:
    words = " ".join(
        re.sub(r"\W", "", w) for w in ("antidisestablishmentarianism photosynthesis " * 300).split()
    )
    text = "Short intro.\n\n" + words + "\n\nA closing sentence."
    document = Document(id="t", source="t", title="t", text=text)
    chunker = Chunker(embedder, max_tokens=64, overlap_tokens=8)
    chunks = chunker.chunk(document)
    counts = embedder.count([c.text for c in chunks])
    assert max(counts) <= 64
    assert all(c.text == text[c.start : c.end] for c in chunks)
    assert chunks[-1].text.endswith("A closing sentence.")
