"""The `rag` command line: a thin shell over the Assistant."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rag import (
    __version__,
    cli_eval_answers,  # noqa: F401  (registers `rag eval answers|calibrate|support`)
)
from rag.cli_eval import eval_app
from rag.config import Settings
from rag.errors import RagError

app = typer.Typer(
    help="Answer questions from your documents, citing the exact passages used. Local and offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
docs_app = typer.Typer(help="List and remove indexed documents.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(eval_app, name="eval")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index folder (default: setting index_dir, index/default).")
]


def _settings(**flags: Any) -> Settings:
    """Settings from rag.toml and RAG_* overridden by the flags that were given."""
    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]error:[/red] invalid setting: {problems}")
        raise typer.Exit(2) from None


def _assistant(settings: Settings):  # noqa: ANN202
    from rag.assistant import Assistant

    return Assistant(settings)


def _fail(exc: RagError) -> None:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        out.print(f"rag {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
) -> None:
    """Answer questions from your documents, citing the exact passages used."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if not verbose:
        for noisy in ("sentence_transformers", "transformers", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders to index (.txt .md .html .pdf .docx .jsonl).")
    ],
    index: IndexOption = None,
    prune: Annotated[bool, typer.Option("--prune", help="Drop indexed files that no longer exist.")] = False,
) -> None:
    """Index files and folders. Unchanged files are skipped, changed ones replaced.

    Exit code 0 when every file was indexed, 1 when some files failed (each named with its reason),
    2 on an error that stopped the run.
    """
    settings = _settings(index_dir=index)
    assistant = _assistant(settings)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
            disable=not err.is_terminal,
        ) as bar:
            files_task = bar.add_task("files", total=None)
            chunks_task = bar.add_task("chunks embedded", total=0)

            def progress(kind: str, n: int) -> None:
                if kind == "files":
                    bar.advance(files_task, n)
                elif kind == "chunks":
                    bar.update(chunks_task, total=(bar.tasks[chunks_task].total or 0) + n)
                else:
                    bar.advance(chunks_task, n)

            report = assistant.ingest(paths, prune=prune, progress=progress)
    except RagError as exc:
        _fail(exc)
        return
    for failure in report.failed:
        err.print(f"[yellow]skipped[/yellow] {failure.path}: {failure.reason}", highlight=False)
    out.print(
        f"Indexed {len(report.added)} new and {len(report.updated)} changed files "
        f"({report.chunks_added} chunks); {len(report.unchanged)} unchanged, {len(report.removed)} pruned, "
        f"{len(report.failed)} failed, in {report.seconds:.1f} s. Index: {settings.index_dir}",
        highlight=False,
    )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    index: IndexOption = None,
    k: Annotated[int | None, typer.Option("-k", "--top-k", help="Passages to retrieve (default 5).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Answer a question from the index, citing the passages used."""
    settings = _settings(index_dir=index)
    assistant = _assistant(settings)
    try:
        if as_json:
            answer = assistant.ask(question, k)
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
            return
        answer = None
        for event in assistant.ask_stream(question, k):
            if event["type"] == "token":
                out.print(event["text"], end="", highlight=False, markup=False, soft_wrap=True)
            else:
                answer = event["answer_object"]
    except RagError as exc:
        _fail(exc)
        return
    assert answer is not None
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


@app.command()
def serve(
    index: IndexOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the chat page and the JSON API."""
    import uvicorn

    from rag.api import create_app

    settings = _settings(index_dir=index, host=host, port=port)
    assistant = _assistant(settings)
    try:
        assistant.index()
        err.print("Loading the language model...", highlight=False)
        assistant.generator  # noqa: B018  (load once before the first question)
    except RagError as exc:
        _fail(exc)
        return
    err.print(f"Serving on http://{settings.host}:{settings.port}", highlight=False)
    uvicorn.run(
        create_app(assistant),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )


@docs_app.command("list")
def docs_list(
    index: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the indexed documents."""
    assistant = _assistant(_settings(index_dir=index))
    try:
        documents = assistant.documents()
    except RagError as exc:
        _fail(exc)
        return
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
    assistant = _assistant(_settings(index_dir=index))
    try:
        removed = assistant.remove_documents(ids)
    except RagError as exc:
        _fail(exc)
        return
    for path in removed:
        out.print(f"removed {path}", highlight=False)
