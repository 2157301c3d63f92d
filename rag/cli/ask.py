"""`rag ask`: one question, its answer streamed, then the sources it cites (or one JSON object)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from rag.cli.common import IndexOption, open_assistant, out, reported_errors, settings_from_flags
from rag.types import Answer


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    index: IndexOption = None,
    k: Annotated[int | None, typer.Option("-k", "--top-k", help="Passages to retrieve (default 5).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Answer a question from the index, citing the passages used."""
    settings = settings_from_flags(index_dir=index)
    assistant = open_assistant(settings)
    with reported_errors():
        if as_json:
            answer = assistant.ask(question, k)
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            return
        stream = assistant.ask_stream(question, k)
        for token in stream:
            out.print(token, end="", highlight=False, markup=False, soft_wrap=True)
    print_sources(stream.answer)


def print_sources(answer: Answer) -> None:
    """After the streamed text: the cited sources with their quotes, or the nearest passages when the
    answer abstained."""
    if answer.abstained and not answer.citations:
        if not answer.timings.get("generation_seconds"):
            out.print(answer.text, highlight=False, markup=False)
        else:
            out.print()
        if answer.passages:
            out.print("\n[dim]Nearest passages (not enough to answer):[/dim]")
            for passage in answer.passages[:3]:
                out.print(
                    f"  - {passage.source} (relevance {passage.relevance:.2f})", highlight=False, markup=False
                )
        return
    out.print("\n\n[bold]Sources[/bold]")
    for c in answer.citations:
        where = f", page {c.page}" if c.page is not None else ""
        quote = " ".join(c.quote.split())
        quote = quote if len(quote) <= 160 else quote[:157] + "..."
        out.print(
            f"[{c.n}] {c.title} ({c.document}{where}, chars {c.start}-{c.end})", highlight=False, markup=False
        )
        out.print(f'    "{quote}"', style="dim", highlight=False, markup=False)
