"""`rag ask`: one question, its answer as the chat shows it ([n] markers, unsupported sentences marked),
then the sources it cites in order (or one JSON object)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Literal

import typer
from rich.live import Live
from rich.text import Text

from rag.cli.common import (
    CollectionOption,
    IndexOption,
    open_assistant,
    out,
    reported_errors,
    settings_from_flags,
)
from rag.text import cited_numbers
from rag.types import Answer, AnswerSentence

UNSUPPORTED = " ⚠ unsupported"
"""The mark after a sentence the cited passages do not support (as in the chat)."""


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    index: IndexOption = None,
    collection: CollectionOption = None,
    k: Annotated[int | None, typer.Option("-k", "--top-k", help="Passages to retrieve (default 5).")] = None,
    retrieval_mode: Annotated[
        Literal["dense", "bm25", "hybrid"] | None,
        typer.Option("--retrieval-mode", help="How passages are found (default: setting retrieval_mode)."),
    ] = None,
    grounding_mode: Annotated[
        Literal["flag", "strict", "off"] | None,
        typer.Option(
            "--grounding-mode",
            help="flag marks unsupported sentences, strict removes them, off skips the check.",
        ),
    ] = None,
    documents: Annotated[
        list[str] | None,
        typer.Option("--document", "-d", help="Search only this document (id or source); repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Answer a question from the index, citing the passages used."""
    settings = settings_from_flags(index_dir=index, collection=collection)
    assistant = open_assistant(settings)
    from rag.retrieval import RetrievalFilter  # here: `rag --help` need not load numpy and FAISS

    filters = RetrievalFilter(documents=tuple(documents)) if documents else None
    options = {"retrieval_mode": retrieval_mode, "grounding_mode": grounding_mode, "filters": filters}
    with reported_errors():
        if as_json:
            answer = assistant.ask(question, k, **options)
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            return
        stream = assistant.ask_stream(question, k, **options)
        if out.is_terminal:
            written = Text()
            with Live(written, console=out, transient=True, refresh_per_second=8) as live:
                for token in stream:
                    written.append(token)
                    live.update(written)
        else:
            stream.result()
    print_answer(stream.answer)


def answer_text(answer: Answer) -> Text:
    """The answer's text with the chat's marks: each sentence keeps the model's [n] markers and gets those
    the support checker attributed, and a mark when its passages do not support it."""
    text = answer.text
    shown = Text()
    cursor = 0
    for sentence in answer.sentences:
        at = text.find(sentence.text, cursor)
        if at < 0:
            continue
        end = at + len(sentence.text)
        stop = end - (len(sentence.text) - len(sentence.text.rstrip(".!?")))
        style = "yellow" if sentence.supported is False else ""
        shown.append(text[cursor:stop], style=style)
        missing = [n for n in sentence.citations if n not in cited_numbers(sentence.text)]
        if missing:  # attributed by the support checker: its marker before the final stop
            shown.append(" " + "".join(f"[{n}]" for n in missing), style="cyan")
        shown.append(text[stop:end], style=style)
        shown.append(_unsupported_mark(sentence))
        cursor = end
    shown.append(text[cursor:])
    return shown


def _unsupported_mark(sentence: AnswerSentence) -> Text:
    marks = Text()
    if sentence.supported is False:
        reasons = f" ({'; '.join(sentence.issues)})" if sentence.issues else ""
        marks.append(UNSUPPORTED + reasons, style="bold yellow")
    return marks


def print_answer(answer: Answer) -> None:
    """The answer, then the cited sources in order with their quotes, or the nearest passages (most
    relevant first) when it abstained."""
    out.print(answer_text(answer), highlight=False, soft_wrap=True)
    if answer.abstained and not answer.citations:
        passages = sorted(answer.passages, key=lambda p: -p.relevance)[:3]
        if passages:
            out.print("\n[dim]Nearest passages (not enough to answer):[/dim]")
            for passage in passages:
                heading = passage.chunk.heading_path
                where = passage.source + (f" › {heading[-1]}" if heading else "")
                out.print(f"  - {where} (relevance {passage.relevance:.2f})", highlight=False, markup=False)
        return
    out.print("\n[bold]Sources[/bold]")
    for c in sorted(answer.citations, key=lambda c: c.n):
        where = f", page {c.page}" if c.page is not None else ""
        cited = answer.passages[c.n - 1].chunk if 0 < c.n <= len(answer.passages) else None
        heading = f" › {cited.heading_path[-1]}" if cited is not None and cited.heading_path else ""
        quote = " ".join(c.quote.split())
        quote = quote if len(quote) <= 160 else quote[:157] + "..."
        out.print(
            f"[{c.n}] {c.title}{heading} ({c.document}{where}, chars {c.start}-{c.end})",
            highlight=False,
            markup=False,
        )
        out.print(f'    "{quote}"', style="dim", highlight=False, markup=False)
