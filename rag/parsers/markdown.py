"""Markdown files: the markdown source is the document text, so offsets need no mapping; headings come from
markdown-it-py's token line maps (ATX `#` and setext underlined headings alike)."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.parsers.common import (
    Heading,
    SourceFile,
    decode_text,
    file_document,
    normalize,
    require_text,
)
from rag.types import Document


def parse_markdown(file: SourceFile) -> list[Document]:
    """One document: the unrendered markdown, with a section per heading."""
    text = normalize(decode_text(file.data, file.source))
    require_text(text, file.source)
    headings = _headings(text)
    title = headings[0].title if headings else file.stem
    return [file_document(file, title, text, headings)]


def _headings(text: str) -> list[Heading]:
    """Every heading with the offset where its text starts on its source line."""
    line_starts = [0]
    for i, char in enumerate(text):
        if char == "\n":
            line_starts.append(i + 1)
    tokens = MarkdownIt("commonmark").parse(text)
    headings: list[Heading] = []
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open" or opening.map is None or inline.type != "inline":
            continue
        title = _plain(inline)
        if not title:
            continue
        first_line = opening.map[0]
        line_start = line_starts[first_line]
        line_end = line_starts[first_line + 1] - 1 if first_line + 1 < len(line_starts) else len(text)
        raw_first_line = inline.content.split("\n", 1)[0]
        found = text.find(raw_first_line, line_start, line_end) if raw_first_line else -1
        start = found if found >= 0 else line_start
        headings.append(Heading(level=int(opening.tag[1]), title=title, start=start))
    return headings


def _plain(inline: Token) -> str:
    """The text of a heading without its markup (emphasis, code spans, links)."""
    pieces: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
        elif child.type == "image":
            pieces.append(child.content)
    return " ".join("".join(pieces).split())
