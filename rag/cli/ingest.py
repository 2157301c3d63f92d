"""`rag ingest`: index files and folders, with progress bars and one line per failed file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rag.cli.common import IndexOption, err, open_assistant, out, reported_errors, settings_from_flags


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
    settings = settings_from_flags(index_dir=index)
    assistant = open_assistant(settings)
    with (
        reported_errors(),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
            disable=not err.is_terminal,
        ) as bar,
    ):
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
