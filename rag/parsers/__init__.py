"""Turn files into `Document`s: one parser per format, chosen by suffix (or magic bytes for odd suffixes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.errors import UnsupportedFileError
from rag.parsers.common import SourceFile, read_file
from rag.parsers.docx import parse_docx
from rag.parsers.html import parse_html
from rag.parsers.jsonl import parse_jsonl
from rag.parsers.limits import ParseLimits, check_limits
from rag.parsers.markdown import parse_markdown
from rag.parsers.pdf import parse_pdf
from rag.parsers.text import parse_text
from rag.types import Document

Parser = Callable[[SourceFile], list[Document]]

PARSERS: dict[str, Parser] = {
    ".txt": parse_text,
    ".text": parse_text,
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".jsonl": parse_jsonl,
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(PARSERS)

__all__ = ["SUPPORTED_SUFFIXES", "ParseLimits", "SourceFile", "parse", "parse_file", "read_file"]


def parse_file(path: Path, *, source: str | None = None, max_bytes: int = 50 * 2**20) -> list[Document]:
    """Read and parse one file into documents (many for a JSONL corpus); ParseError says why not."""
    path = Path(path)
    return parse(read_file(path, str(path) if source is None else source, max_bytes))


DEFAULT_LIMITS = ParseLimits.from_settings()


def parse(file: SourceFile, limits: ParseLimits = DEFAULT_LIMITS) -> list[Document]:
    """Parse a file already read; the parser is chosen by suffix, else by the first bytes (PDF, Word).

    A file its parser would unpack or nest beyond `limits` is refused first (time and memory are bounded
    by the process it runs in: see `rag.parsers.pool`).
    """
    suffix = file.path.suffix.lower()
    parser = PARSERS.get(suffix) or _sniff(file.data[:4096])
    if parser is None:
        shown = f"'{suffix}'" if suffix else "without a suffix"
        raise UnsupportedFileError(
            file.source,
            f"unsupported file type {shown} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})",
        )
    check_limits(file, parser.__name__.removeprefix("parse_"), limits)
    return parser(file)


def _sniff(head: bytes) -> Parser | None:
    """A parser for a file whose suffix is unknown but whose first bytes say PDF or Word document."""
    if head.startswith(b"%PDF-"):
        return parse_pdf
    if head.startswith(b"PK\x03\x04") and b"word/" in head:
        return parse_docx
    return None
