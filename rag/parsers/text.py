"""Plain text files (`.txt`, `.text`): the decoded text as is, titled by the file name."""

from __future__ import annotations

from rag.parsers.common import SourceFile, decode_text, file_document, normalize, require_text
from rag.types import Document


def parse_text(file: SourceFile) -> list[Document]:
    """One document holding the whole text; plain text has no headings or pages."""
    text = normalize(decode_text(file.data, file.source))
    require_text(text, file.source)
    return [file_document(file, file.stem, text)]
