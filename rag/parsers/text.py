"""Plain text files (`.txt`, `.text`): the decoded text as is, titled by the file name."""

from __future__ import annotations

from pathlib import Path

from rag.parsers.common import content_hash, decode_text, normalize, require_text
from rag.types import Document


def parse_text(data: bytes, path: Path, source: str) -> list[Document]:
    """One document holding the whole text; plain text has no headings or pages."""
    text = normalize(decode_text(data, source))
    require_text(text, source)
    return [Document(id=source, source=source, title=path.stem, text=text, content_hash=content_hash(data))]
