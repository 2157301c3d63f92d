"""`rag docs list | remove`: the indexed documents."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer

from rag.catalog import DocumentSummary
from rag.cli.common import (
    CollectionOption,
    IndexOption,
    open_assistant,
    out,
    reported_errors,
    settings_from_flags,
)

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

docs_app = typer.Typer(help="List and remove indexed documents.", no_args_is_help=True)


@docs_app.command("list")
def docs_list(
    index: IndexOption = None,
    collection: CollectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the indexed documents."""
    assistant = open_assistant(settings_from_flags(index_dir=index, collection=collection))
    with reported_errors():
        documents = assistant.documents()
    if as_json:
        sys.stdout.write(json.dumps([d.__dict__ for d in documents], ensure_ascii=False) + "\n")
        return
    for d in documents:
        out.print(document_line(d), highlight=False, markup=False)
    out.print(f"{len(documents)} documents", style="dim")


def document_line(document: DocumentSummary) -> str:
    """One line per document, whatever its name holds: tabs, newlines and other control characters in
    the id or the title are written as escapes (`\\n`), so a line is always one document."""
    return f"{_escaped(document.id)}\t{_escaped(document.title)}\t{document.chunks} chunks"


def _escaped(text: str) -> str:
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


@docs_app.command("remove")
def docs_remove(
    ids: Annotated[
        list[str], typer.Argument(help="Document ids or file paths, as `rag docs list` shows them.")
    ],
    index: IndexOption = None,
    collection: CollectionOption = None,
) -> None:
    """Remove documents (and every document from the same file) from the index."""
    assistant = open_assistant(settings_from_flags(index_dir=index, collection=collection))
    with reported_errors():
        removed = assistant.remove_documents(ids)
    for path in removed:
        out.print(f"removed {path}", highlight=False)
