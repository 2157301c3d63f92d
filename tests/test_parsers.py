"""Tests for rag.parsers: every format, titles, sections, PDF pages, JSONL corpora, every bad-input reason."""

from __future__ import annotations

import hashlib
import json
import re
import time
import zipfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from rag.errors import ParseError, UnsupportedFileError
from rag.parsers import SUPPORTED_SUFFIXES, ParseLimits, parse, parse_file, read_file
from rag.parsers.jsonl import corpus_id
from rag.types import Document

DOCUMENTS = Path(__file__).resolve().parent.parent / "documents"


def _one(path: Path, **kwargs: object) -> Document:
    documents = parse_file(path, **kwargs)
    assert len(documents) == 1
    return documents[0]


def _reason(path: Path, **kwargs: object) -> str:
    with pytest.raises(ParseError) as caught:
        parse_file(path, **kwargs)
    assert caught.value.path == str(path)
    return caught.value.reason


def _assert_sections_point_at_headings(document: Document) -> None:
    for section in document.sections:
        assert document.text[section.start :].startswith(section.path[-1])
        assert section.start < section.end <= len(document.text)


def _make_pdf(path: Path, pages: list[str], *, title: str | None = None, outline: bool = False) -> Path:
    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for number, body in enumerate(pages, start=1):
        pdf.add_page()
        heading = f"Chapter {number}"
        if outline:
            pdf.start_section(heading, level=0)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 8, body)
    pdf.output(str(path))
    return path


# Plain text


def test_text_file_keeps_text_and_is_titled_by_stem(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"First line.\r\nSecond line.\r\n")
    document = _one(path)
    assert document.text == "First line.\nSecond line.\n"
    assert (document.id, document.source, document.title) == (str(path), str(path), "notes")
    assert document.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert document.pages == () and document.sections == ()


def test_source_overrides_id_and_source(tmp_path: Path) -> None:
    path = tmp_path / "a.text"
    path.write_text("hello", encoding="utf-8")
    document = _one(path, source="docs/a.text")
    assert (document.id, document.source) == ("docs/a.text", "docs/a.text")


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9")
    assert _one(path).text == "café"


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [
        ("Le café était très fréquenté, et l'élève a réservé une table près de la fenêtre. ", "cp1252"),
        ("Привет, как дела? Это обычный текст на русском языке, записанный в старой кодировке. ", "cp1251"),
    ],
)
def test_legacy_encoding_falls_back_to_charset_normalizer(
    tmp_path: Path, sentence: str, encoding: str
) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes((sentence * 5).encode(encoding))
    assert _one(path).text == sentence * 5


def test_utf16_with_bom_is_text_not_binary(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("Hello from UTF-16, a perfectly normal text file.\n".encode("utf-16"))
    assert _one(path).text == "Hello from UTF-16, a perfectly normal text file.\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_text_not_binary(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("Grüße from UTF-16 without a byte order mark.\n".encode(codec))
    assert _one(path).text == "Grüße from UTF-16 without a byte order mark.\n"


def test_lone_surrogates_from_json_escapes_become_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"_id": "x", "title": "T\\ud800", "text": "half \\udc00 a pair"}\n', encoding="utf-8")
    [document] = parse_file(path)
    assert document.text == "half \ufffd a pair" and document.title == "T\ufffd"


def test_a_thousand_nested_elements_are_walked_without_recursion(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<html><body>" + "<div><span>" * 1000 + "core" + "</span></div>" * 1000)
    assert _one(path).text == "core"


def test_html_nested_beyond_the_limit_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "deeper.html"
    path.write_text("<div>" * 100_000 + "x")
    started = time.perf_counter()
    reason = _reason(path)
    assert time.perf_counter() - started < 2.0
    assert reason == "HTML elements nest deeper than the 4096 levels limit (setting max_nesting_depth)"


# Markdown


def test_markdown_keeps_source_and_maps_headings(tmp_path: Path) -> None:
    source = (
        "# Guide\r\n\r\nIntro with **bold**.\r\n\r\n## Install\r\n\r\nRun it.\r\n\r\n"
        "### Details\r\n\r\nMore.\r\n\r\nUsage\r\n-----\r\n\r\nAsk away.\r\n"
    )
    path = tmp_path / "guide.md"
    path.write_bytes(source.encode("utf-8"))
    document = _one(path)
    text = source.replace("\r\n", "\n")
    assert document.text == text
    assert document.title == "Guide"
    assert [s.path for s in document.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Details"),
        ("Guide", "Usage"),
    ]
    _assert_sections_point_at_headings(document)
    guide, install, details, usage = document.sections
    assert guide.end == len(text)
    assert install.end == usage.start == text.index("Usage")
    assert details.end == usage.start
    assert document.heading_path_at(text.index("More.")) == ("Guide", "Install", "Details")


def test_markdown_heading_markup_is_removed_from_path(tmp_path: Path) -> None:
    path = tmp_path / "m.markdown"
    path.write_text("# The `rag ask` command\n\ntext\n", encoding="utf-8")
    document = _one(path)
    assert document.sections[0].path == ("The rag ask command",)
    assert document.text[document.sections[0].start :].startswith("The `rag ask` command")


def test_markdown_without_headings_is_titled_by_stem(tmp_path: Path) -> None:
    path = tmp_path / "plain-notes.md"
    path.write_text("Just a paragraph.\n", encoding="utf-8")
    document = _one(path)
    assert document.title == "plain-notes"
    assert document.sections == ()


# HTML


HTML_PAGE = """<!doctype html><html><head><title> My  Page </title><style>p {color: red}</style></head>
<body><nav><a href="/">Home</a> Menu</nav><script>var secret = 1;</script><noscript>Enable JS</noscript>
<h1>Main heading</h1><p>First   paragraph with <b>bold</b>
text.</p><div>Second block</div><h2>Sub &amp; more</h2><p>Line one<br>Line two</p>
<table><tr><th>Key</th><th>Value</th></tr><tr><td>port</td><td>8000</td></tr></table></body></html>"""


def test_html_drops_scripts_and_separates_blocks(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    document = _one(path)
    assert document.title == "My Page"
    assert document.text == (
        "Main heading\n\nFirst paragraph with bold text.\n\nSecond block\n\nSub & more\n\n"
        "Line one\nLine two\n\nKey\tValue\nport\t8000"
    )
    for dropped in ("secret", "Menu", "Enable JS", "color"):
        assert dropped not in document.text
    assert [s.path for s in document.sections] == [("Main heading",), ("Main heading", "Sub & more")]
    _assert_sections_point_at_headings(document)
    assert document.sections[0].end == len(document.text)


def test_html_without_title_uses_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<h2>Only heading</h2><p>Body.</p>", encoding="utf-8")
    assert _one(path).title == "Only heading"


# PDF


def test_pdf_pages_map_back_to_page_text(tmp_path: Path) -> None:
    bodies = [
        "Alpha facts live on page one.",
        "Beta facts live on page two.",
        "Gamma facts live on page three.",
    ]
    path = _make_pdf(tmp_path / "book.pdf", bodies, title="A Test Book", outline=True)
    document = _one(path)
    assert document.title == "A Test Book"
    assert [p.page for p in document.pages] == [1, 2, 3]
    assert document.pages[0].start == 0 and document.pages[-1].end == len(document.text)
    for previous, following in zip(document.pages, document.pages[1:], strict=False):
        assert previous.end == following.start
    for span, body in zip(document.pages, bodies, strict=True):
        page_text = document.text[span.start : span.end]
        assert body in page_text
        assert document.page_at(document.text.index(body)) == span.page
    assert [s.path for s in document.sections] == [("Chapter 1",), ("Chapter 2",), ("Chapter 3",)]
    _assert_sections_point_at_headings(document)
    assert [s.start for s in document.sections] == [p.start for p in document.pages]


def test_pdf_without_outline_or_title(tmp_path: Path) -> None:
    path = _make_pdf(tmp_path / "plain.pdf", ["Only one page of text."])
    document = _one(path)
    assert document.title == "plain"
    assert document.sections == ()
    assert "Only one page of text." in document.text


def test_pdf_is_sniffed_when_the_suffix_is_unknown(tmp_path: Path) -> None:
    path = _make_pdf(tmp_path / "download.bin", ["Sniffed by its magic bytes."])
    assert "Sniffed by its magic bytes." in _one(path).text


# DOCX


def _make_docx(path: Path, *, core_title: str = "") -> Path:
    word = docx.Document()
    word.core_properties.title = core_title
    word.add_heading("Overview", level=1)
    word.add_paragraph("rag answers questions.")
    word.add_paragraph("")
    word.add_heading("Settings", level=2)
    table = word.add_table(rows=2, cols=2)
    for row, (key, value) in zip(table.rows, [("name", "default"), ("top_k", "5")], strict=True):
        row.cells[0].text, row.cells[1].text = key, value
    word.add_heading("Appendix", level=1)
    word.add_paragraph("The end.")
    word.save(str(path))
    return path


def test_docx_that_unpacks_beyond_the_limit_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = _make_docx(tmp_path / "bomb.docx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/zeros.bin", b"\0" * 3 * 2**20)
    limits = replace(ParseLimits.from_settings(), max_decompressed_mb=2.0)
    with pytest.raises(ParseError) as caught:
        parse(read_file(path, str(path), 2**30), limits)
    reason = caught.value.reason
    assert re.fullmatch(
        r"unpacks to 3\.\d MiB, more than the 2 MiB limit \(setting max_decompressed_mb\)", reason
    )
    assert _one(path).title == "Overview", "within the default limit the same file parses"


def test_docx_paragraphs_headings_and_tables(tmp_path: Path) -> None:
    document = _one(_make_docx(tmp_path / "manual.docx", core_title="The Manual"))
    assert document.title == "The Manual"
    assert document.text == (
        "Overview\n\nrag answers questions.\n\nSettings\n\nname\tdefault\ntop_k\t5\n\nAppendix\n\nThe end."
    )
    assert [s.path for s in document.sections] == [("Overview",), ("Overview", "Settings"), ("Appendix",)]
    _assert_sections_point_at_headings(document)
    overview, settings, appendix = document.sections
    assert overview.end == settings.end == appendix.start


def test_docx_without_core_title_uses_first_heading(tmp_path: Path) -> None:
    assert _one(_make_docx(tmp_path / "manual.docx")).title == "Overview"


# JSONL (BEIR)


def test_jsonl_beir_lines_become_documents(tmp_path: Path) -> None:
    lines = [
        json.dumps({"_id": "d1", "title": "First", "text": "Text one."}),
        "",
        json.dumps({"id": 7, "text": "Text two."}),
        json.dumps({"_id": "d3", "title": "Only a title", "text": ""}),
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    documents = parse_file(path)
    assert [(d.id, d.title, d.text) for d in documents] == [
        (f"{path}#d1", "First", "Text one."),
        (f"{path}#7", "7", "Text two."),
        (f"{path}#d3", "Only a title", "Only a title"),
    ]
    assert all(d.source == str(path) for d in documents)
    assert [corpus_id(d.id, d.source) for d in documents] == ["d1", "7", "d3"]
    assert documents[0].content_hash == hashlib.sha256(lines[0].encode("utf-8")).hexdigest()
    assert len({d.content_hash for d in documents}) == 3


@pytest.mark.parametrize(
    ("second_line", "reason"),
    [
        ("{not json", "line 2: invalid JSON"),
        ('["a", "list"]', "line 2: expected a JSON object with '_id' and 'text'"),
        ('{"title": "no id", "text": "x"}', "line 2: missing '_id' (or 'id')"),
        ('{"_id": "a", "text": "again"}', "line 2: duplicate id 'a'"),
    ],
)
def test_jsonl_bad_line_fails_the_file(tmp_path: Path, second_line: str, reason: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "ok"}\n' + second_line + "\n{broken too\n", encoding="utf-8")
    assert _reason(path) == reason


# Bad input


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(b"")
    assert _reason(path) == "empty file"


def test_whitespace_only_file_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\n\t\n", encoding="utf-8")
    assert _reason(path) == "no extractable text"


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".jsonl"])
def test_binary_content_in_text_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"image{suffix}"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    assert _reason(path) == "binary file, not text"


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as file:
        file.truncate(int(61.2 * 2**20))
    assert _reason(path) == "file is 61.2 MiB, larger than the 50 MiB limit (setting max_file_mb)"


def test_size_limit_follows_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_text("x" * 3000, encoding="utf-8")
    assert "larger than the" in _reason(path, max_bytes=2999)
    assert len(_one(path, max_bytes=3000).text) == 3000


def test_undecodable_text(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(1, 256)) * 8)
    assert _reason(path) == "cannot decode text: not UTF-8 and no other encoding fits"


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\nthis is not really a PDF at all\n")
    assert _reason(path).startswith("corrupt or unreadable PDF: ")


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    assert _reason(path) == "no extractable text (scanned PDF?)"


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated zip", b"plain words, not a zip file"])
def test_corrupt_docx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(content)
    assert _reason(path).startswith("corrupt or unreadable DOCX: ")


def test_missing_file(tmp_path: Path) -> None:
    assert _reason(tmp_path / "gone.txt") == "file not found"


def test_unknown_suffix_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("some text", encoding="utf-8")
    with pytest.raises(UnsupportedFileError) as caught:
        parse_file(path)
    reason = caught.value.reason
    assert reason.startswith("unsupported file type '.xyz' (supported: ")
    assert all(suffix in reason for suffix in SUPPORTED_SUFFIXES)


def test_supported_suffixes() -> None:
    assert {
        ".txt",
        ".text",
        ".md",
        ".markdown",
        ".html",
        ".htm",
        ".pdf",
        ".docx",
        ".jsonl",
    } == SUPPORTED_SUFFIXES


# The default collection


def test_default_collection_parses() -> None:
    documents = {
        path.name: _one(path) for path in sorted(DOCUMENTS.iterdir()) if path.suffix in SUPPORTED_SUFFIXES
    }
    assert set(documents) == {"rag-user-guide.md", "faq.html", "release-notes.pdf"}
    assert documents["rag-user-guide.md"].title == "rag user guide"
    assert documents["faq.html"].title == "rag FAQ"
    assert documents["release-notes.pdf"].title == "rag release notes"
    notes = documents["release-notes.pdf"]
    assert len(notes.pages) >= 2
    assert ("Known limitations",) in [s.path for s in notes.sections]
    assert "document.querySelectorAll" not in documents["faq.html"].text
    for document in documents.values():
        _assert_sections_point_at_headings(document)
        assert len(document.sections) >= 3
    for fact in ("8000", "50 MiB", "0.362", "2026-11-29"):
        assert all(fact in d.text for d in documents.values()), fact
