"""Fuzzing the parsers (hypothesis, fixed seed, small budget): random bytes and random structure per format.
A parser either returns documents whose offsets are valid and whose text can be stored, or raises the
project's ParseError; never anything else."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import docx
from fpdf import FPDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import Chunker, WordCounter
from rag.errors import ParseError
from rag.parsers import SUPPORTED_SUFFIXES, parse
from rag.parsers.common import SourceFile
from rag.types import Document

FUZZ = settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CHUNKER = Chunker(WordCounter(), max_tokens=24, overlap_tokens=4)
WORDS = st.sampled_from(
    ["lava", "honey", "bread", "ice", "Grüße", "naïve", "日本", "😀", "\u00a0", "&amp;", "'"]
)


def _outcome(name: str, data: bytes) -> list[Document] | None:
    """Parse the bytes as a file called `name`; check every document it gives; None for a ParseError."""
    file = SourceFile(Path(name), name, data, hashlib.sha256(data).hexdigest())
    try:
        documents = parse(file)
    except ParseError as exc:
        assert exc.path == name and exc.reason
        return None
    assert documents
    for document in documents:
        _check(document)
    return documents


def _check(document: Document) -> None:
    """Offsets inside the text, text and names storable as UTF-8, chunks that are slices of the text."""
    text = document.text
    assert text.strip()
    for value in (document.id, document.title, document.source, text):
        value.encode("utf-8")
    for span in (*document.pages, *document.sections):
        assert 0 <= span.start <= span.end <= len(text)
    for chunk in CHUNKER.chunk(document):
        assert chunk.text == text[chunk.start : chunk.end] and chunk.text.strip()


@FUZZ
@given(suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES) + [".bin", ""]), data=st.binary(max_size=3000))
def test_random_bytes_in_every_format(suffix: str, data: bytes) -> None:
    _outcome(f"fuzz{suffix}", data)


@FUZZ
@given(
    text=st.text(max_size=800),
    codec=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"]),
    suffix=st.sampled_from([".txt", ".md"]),
)
def test_text_in_any_encoding(text: str, codec: str, suffix: str) -> None:
    _outcome(f"fuzz{suffix}", text.encode(codec, errors="ignore"))


MARKDOWN = st.lists(
    st.one_of(
        WORDS,
        st.sampled_from(
            ["#", "## ", "\n", "\n\n", "*", "_", "`", "```", "[", "]", "(", ")", "> ", "- ", "1. "]
        ),
        st.sampled_from(["===", "---", "|a|b|\n|-|-|", "<div>", "</div>", "\\", "    code"]),
    ),
    max_size=120,
).map(" ".join)


@FUZZ
@given(markdown=MARKDOWN)
def test_markdown_structure(markdown: str) -> None:
    _outcome("fuzz.md", markdown.encode())


TAGS = [
    "div",
    "p",
    "span",
    "h1",
    "h3",
    "table",
    "tr",
    "td",
    "th",
    "ul",
    "li",
    "pre",
    "br",
    "script",
    "b",
    "a",
]
HTML = st.recursive(
    WORDS,
    lambda inner: st.tuples(st.sampled_from(TAGS), st.lists(inner, max_size=4), st.booleans()).map(
        lambda parts: f"<{parts[0]}>" + " ".join(parts[1]) + (f"</{parts[0]}>" if parts[2] else "")
    ),
    max_leaves=60,
)


@FUZZ
@given(
    body=HTML,
    title=st.one_of(st.none(), WORDS),
    prefix=st.sampled_from(["", "<!doctype html>", "<html><body>"]),
)
def test_html_structure(body: str, title: str | None, prefix: str) -> None:
    head = f"<title>{title}</title>" if title is not None else ""
    _outcome("fuzz.html", (prefix + head + body).encode())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
JSON_RECORD = st.fixed_dictionaries(
    {},
    optional={
        "_id": st.one_of(st.text(max_size=12), st.integers(), JSON_VALUES),
        "id": st.text(max_size=12),
        "title": st.one_of(st.text(max_size=30), JSON_VALUES),
        "text": st.one_of(st.text(max_size=200), JSON_VALUES),
    },
)


@FUZZ
@given(records=st.lists(st.one_of(JSON_RECORD, JSON_VALUES), max_size=8), ascii_only=st.booleans())
def test_jsonl_structure(records: list[object], ascii_only: bool) -> None:
    _outcome("fuzz.jsonl", "\n".join(json.dumps(r, ensure_ascii=ascii_only) for r in records).encode())


PRINTABLE = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Co", "Cn"]), max_size=60)


def _docx(paragraphs: list[tuple[str, int]]) -> bytes:
    word = docx.Document()
    for text, level in paragraphs:
        if level:
            word.add_heading(text, level=level)
        else:
            word.add_paragraph(text)
    buffer = io.BytesIO()
    word.save(buffer)
    return buffer.getvalue()


@settings(FUZZ, max_examples=25)
@given(
    paragraphs=st.lists(st.tuples(PRINTABLE, st.integers(0, 3)), max_size=6),
    cut=st.integers(0, 100),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
)
def test_docx_structure_truncated_and_flipped(
    paragraphs: list[tuple[str, int]], cut: int, flips: list
) -> None:
    data = bytearray(_docx(paragraphs))
    for position, value in flips:
        data[position % len(data)] = value
    if cut < 100:
        data = data[: len(data) * cut // 100]
    _outcome("fuzz.docx", bytes(data))


def _pdf(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@settings(FUZZ, max_examples=20)
@given(
    pages=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200), max_size=3),
    cut=st.integers(0, 100),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
)
def test_pdf_structure_truncated_and_flipped(pages: list[str], cut: int, flips: list) -> None:
    data = bytearray(_pdf(pages))
    for position, value in flips:
        data[position % len(data)] = value
    if cut < 100:
        data = data[: len(data) * cut // 100]
    _outcome("fuzz.pdf", bytes(data))
