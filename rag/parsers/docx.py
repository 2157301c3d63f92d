"""Word files (python-docx): body paragraphs and tables in reading order, one block per paragraph, tables as
tab-separated rows, headings from the "Heading N" paragraph styles."""

from __future__ import annotations

import io
import re

import docx
from docx.document import Document as WordDocument
from docx.table import Table
from docx.text.paragraph import Paragraph

from rag.errors import ParseError
from rag.parsers.common import (
    Heading,
    SourceFile,
    file_document,
    join_blocks,
    normalize,
    require_text,
)
from rag.types import Document

_HEADING_STYLE = re.compile(r"heading\s*(\d)", re.IGNORECASE)


def parse_docx(file: SourceFile) -> list[Document]:
    """One document titled by the core properties' title (else the first heading, else the file name)."""
    source = file.source
    try:
        document = docx.Document(io.BytesIO(file.data))
        core_title = (document.core_properties.title or "").strip()
        blocks = list(_blocks(document))
    except Exception as exc:  # python-docx surfaces zip, XML and package errors under many types
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ParseError(source, f"corrupt or unreadable DOCX: {reason}") from None
    text, starts = join_blocks(block for block, _ in blocks)
    require_text(text, source)
    headings = [
        Heading(level=level, title=block, start=start)
        for (block, level), start in zip(blocks, starts, strict=True)
        if level is not None
    ]
    title = core_title or (headings[0].title if headings else file.stem)
    return [file_document(file, title, text, headings)]


def _blocks(document: WordDocument) -> list[tuple[str, int | None]]:
    """(text, heading level or None) for each non-empty paragraph and table of the body, in order."""
    blocks: list[tuple[str, int | None]] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = normalize(item.text).strip()
            if text:
                blocks.append((text, _heading_level(item)))
        elif isinstance(item, Table):
            rows = [normalize(row).strip() for row in _table_rows(item)]
            table = "\n".join(row for row in rows if row)
            if table:
                blocks.append((table, None))
    return blocks


def _heading_level(paragraph: Paragraph) -> int | None:
    style = paragraph.style
    match = _HEADING_STYLE.fullmatch(style.name.strip()) if style is not None and style.name else None
    return int(match.group(1)) if match else None


def _table_rows(table: Table) -> list[str]:
    """Each row as its cells' text joined by tabs; a merged cell counts once."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        rows.append("\t".join(cells))
    return rows
