"""HTML files (selectolax's Lexbor parser): visible body text, block elements as paragraphs separated by blank
lines, headings as paragraphs of their own; scripts, styles, navigation and noscript content are dropped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

from rag.parsers.common import (
    Heading,
    SourceFile,
    decode_text,
    file_document,
    normalize,
    require_text,
)
from rag.types import Document

_DROPPED = ["script", "style", "nav", "noscript", "template", "head"]
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# fmt: off
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "html", "li",
    "main", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "ul",
})
# fmt: on
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"\s+")


def parse_html(file: SourceFile) -> list[Document]:
    """One document titled by <title> (else its first heading, else the file name)."""
    tree = LexborHTMLParser(normalize(decode_text(file.data, file.source)))
    title_node = tree.css_first("title")
    page_title = _SPACES.sub(" ", title_node.text(deep=True)).strip() if title_node is not None else ""
    tree.strip_tags(_DROPPED)
    writer = _TextWriter()
    if tree.body is not None:
        writer.walk(tree.body)
    writer.flush()
    text = "".join(writer.parts)
    require_text(text, file.source)
    title = page_title or (writer.headings[0].title if writer.headings else file.stem)
    return [file_document(file, title, text, writer.headings)]


def _children(node: LexborNode) -> Iterator[LexborNode]:
    return node.iter(include_text=True)


class _TextWriter:
    """Collects inline text into paragraphs and paragraphs into the document text, noting heading offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[Heading] = []
        self._inline: list[str] = []
        self._last_was_row = False

    def walk(self, root: LexborNode) -> None:
        """Visit the tree depth first with a stack of child iterators (no recursion: any nesting depth)."""
        stack: list[tuple[Iterator[LexborNode], Callable[[], None] | None]] = [(_children(root), None)]
        while stack:
            children, on_leave = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if on_leave is not None:
                    on_leave()
                continue
            tag = child.tag
            if tag == "-text":
                self._inline.append(_SPACES.sub(" ", child.text(deep=False)))
            elif tag in _HEADINGS:
                self.flush()
                self.paragraph(_SPACES.sub(" ", child.text(deep=True)).strip(), level=_HEADINGS[tag])
            elif tag == "pre":
                self.flush()
                self.paragraph(child.text(deep=True).strip("\n"))
            elif tag == "br":
                self._inline.append("\n")
            elif tag == "tr":
                self.flush()
                stack.append((_children(child), self._end_row))
            elif tag in _CELLS:
                if self._inline and "".join(self._inline).strip():
                    self._inline.append("\t")
                stack.append((_children(child), None))
            elif tag in _BLOCKS:
                self.flush()
                stack.append((_children(child), self.flush))
            elif tag is not None and not tag.startswith(("-", "_", "!")):
                stack.append((_children(child), None))

    def _end_row(self) -> None:
        self.flush(table_row=True)

    def flush(self, table_row: bool = False) -> None:
        """End the paragraph being collected, if it holds any text; rows of a table stay on adjacent lines."""
        joined = "".join(self._inline)
        self._inline = []
        joined = re.sub(r" *([\n\t]) *", r"\1", joined)
        self.paragraph(re.sub(r" {2,}", " ", joined).strip(), table_row=table_row)

    def paragraph(self, text: str, level: int | None = None, table_row: bool = False) -> None:
        if not text.strip():
            return
        if self.parts:
            separator = "\n" if table_row and self._last_was_row else "\n\n"
            self.parts.append(separator)
            self.length += len(separator)
        self._last_was_row = table_row
        if level is not None:
            self.headings.append(Heading(level=level, title=text, start=self.length))
        self.parts.append(text)
        self.length += len(text)
