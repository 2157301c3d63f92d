"""JSON Lines corpora in the BEIR layout: one document per line, `{"_id" (or "id"), "title", "text"}`.

A line's document is identified as `<file>#<id>`: ids are namespaced by their file, so no file can claim
the id of a document from another file (two corpora may both have a document "1").
"""

from __future__ import annotations

import hashlib
import json

from rag.errors import ParseError
from rag.parsers.common import SourceFile, decode_text, normalize
from rag.types import Document


def document_id(source: str, corpus_id: str) -> str:
    """The id of the document a line of the file `source` gives the id `corpus_id`."""
    return f"{source}#{corpus_id}"


def corpus_id(document_id: str, source: str) -> str:
    """The id the corpus gave a document (its id without the `<file>#` namespace); other ids as they are."""
    namespace = f"{source}#"
    return document_id[len(namespace) :] if document_id.startswith(namespace) else document_id


def parse_jsonl(file: SourceFile) -> list[Document]:
    """A document per non-blank line; any bad line fails the whole file, naming the first bad line.

    A line with an empty `text` keeps its title as text so it can be found; one with neither is skipped.
    """
    source = file.source
    documents: list[Document] = []
    seen: set[str] = set()
    for number, line in enumerate(decode_text(file.data, source).split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ParseError(source, f"line {number}: invalid JSON") from None
        except RecursionError:
            raise ParseError(source, f"line {number}: JSON nested too deeply to read") from None
        if not isinstance(record, dict):
            raise ParseError(source, f"line {number}: expected a JSON object with '_id' and 'text'")
        doc_id = record.get("_id", record.get("id"))
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise ParseError(source, f"line {number}: missing '_id' (or 'id')")
        doc_id = normalize(doc_id)
        title, text = record.get("title") or "", record.get("text") or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise ParseError(source, f"line {number}: 'title' and 'text' must be strings")
        if doc_id in seen:
            raise ParseError(source, f"line {number}: duplicate id '{doc_id}'")
        seen.add(doc_id)
        title, text = normalize(title).strip(), normalize(text).strip()
        if not text and not title:
            continue
        documents.append(
            Document(
                id=document_id(source, doc_id),
                source=source,
                title=title or doc_id,
                text=text or title,
                content_hash=hashlib.sha256(line.encode("utf-8")).hexdigest(),
            )
        )
    if not documents:
        raise ParseError(source, "no documents: every line is blank or has no text")
    return documents
