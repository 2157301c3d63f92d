"""`rag docs list | remove`: the indexed documents."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from rag.cli.common import IndexOption, open_assistant, out, reported_errors, settings_from_flags

docs_app = typer.Typer(help="List and remove indexed documents.", no_args_is_help=True)


@docs_app.command("list")
def docs_list(
    index: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the indexed documents."""
    assistant = open_assistant(settings_from_flags(index_dir=index))
    with reported_errors():
        documents = assistant.documents()
    if as_json:
        sys.stdout.write(json.dumps([d.__dict__ for d in documents], ensure_ascii=False) + "\n")
        return
    for d in documents:
        out.print(f"{d.id}\t{d.title}\t{d.chunks} chunks", highlight=False, markup=False)
    out.print(f"{len(documents)} documents", style="dim")


@docs_app.command("remove")
def docs_remove(
    ids: Annotated[
        list[str], typer.Argument(help="Document ids or file paths, as `rag docs list` shows them.")
    ],
    index: IndexOption = None,
) -> None:
    """Remove documents (and every document from the same file) from the index."""
    assistant = open_assistant(settings_from_flags(index_dir=index))
    with reported_errors():
        removed = assistant.remove_documents(ids)
    for path in removed:
        out.print(f"removed {path}", highlight=False)
