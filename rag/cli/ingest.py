"""`rag ingest`: index files and folders, with one progress display and one line per failed file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rag.cli.common import (
    CollectionOption,
    IndexOption,
    err,
    fail,
    open_assistant,
    out,
    reported_errors,
    settings_from_flags,
)


class IngestProgress:
    """One progress bar over the chunks to embed, fed by the ingest's progress events.

    The files are counted before the run; the chunks are known only as files are read, so until the last
    file is read the total is an estimate (chunks found so far, plus the average per file read for the
    files left) shown with `~`. Before the first file is read the bar is indeterminate. The bar's total
    never drops below what is done, so it never shows 100 % and then falls back.
    """

    def __init__(self, progress: Progress, files_total: int) -> None:
        self.progress = progress
        self.files_total = files_total
        self.files_read = self.chunks_found = self.embedded = 0
        self.started: float | None = None  # the first event: the rate leaves out the model's loading
        self.task: TaskID = progress.add_task("Indexing", total=None, files="", chunks="", rate="")
        self._show()

    def __call__(self, kind: str, n: int) -> None:
        if self.started is None:
            self.started = time.monotonic()
        if kind == "files":
            self.files_read += n
        elif kind == "chunks":
            self.chunks_found += n
        else:
            self.embedded += n
        self._show()

    def estimated_total(self) -> tuple[float | None, bool]:
        """The chunks to embed in all, and whether that is exact (all files read)."""
        if self.files_read >= self.files_total:
            return max(self.chunks_found, self.embedded), True
        if self.files_read == 0:
            return None, False
        per_file = self.chunks_found / self.files_read
        estimate = self.chunks_found + per_file * (self.files_total - self.files_read)
        return max(estimate, self.embedded + 1), False

    def _show(self) -> None:
        total, exact = self.estimated_total()
        elapsed = max(time.monotonic() - (self.started or time.monotonic()), 1e-6)
        chunks = f"{self.embedded}/{'' if exact else '~'}{int(total)} chunks" if total else "reading files"
        rate = f"{self.embedded / elapsed:5.1f} chunks/s" if self.embedded else " " * 14
        self.progress.update(
            self.task,
            completed=self.embedded,
            total=total,
            files=f"{self.files_read}/{self.files_total} files",
            chunks=chunks,
            rate=rate,
        )


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders to index (.txt .md .html .pdf .docx .jsonl).")
    ],
    index: IndexOption = None,
    collection: CollectionOption = None,
    prune: Annotated[bool, typer.Option("--prune", help="Drop indexed files that no longer exist.")] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="in-process (default), or ray: parse, chunk and embed on Ray (a local Ray of ray_workers "
            "CPUs, or the cluster RAY_ADDRESS names; needs the scale extra).",
        ),
    ] = "in-process",
) -> None:
    """Index files and folders. Unchanged files are skipped, changed ones replaced.

    Exit code 0 when every file was indexed, 1 when some files failed (each named with its reason),
    2 on an error that stopped the run (a path that does not exist stops it before anything is written).
    """
    settings = settings_from_flags(index_dir=index, collection=collection)
    if engine not in ("in-process", "ray"):
        fail(f"Unknown --engine {engine!r}: use in-process or ray.")
    missing = [str(path) for path in paths if not path.exists() and not path.is_symlink()]
    if missing:
        fail(f"No such file or folder: {', '.join(missing)}. Nothing was indexed.")
    from rag.ingest import discover_files  # here: `rag --help` need not load the parsers

    assistant = open_assistant(settings)
    files, _ = discover_files(paths)
    with (
        reported_errors(),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[files]} • {task.fields[chunks]} • {task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
            disable=not err.is_terminal,
        ) as bar,
    ):
        progress = IngestProgress(bar, len(files))
        if engine == "ray":
            from rag.ray_ingest import RayIngestor

            report = RayIngestor.for_assistant(assistant).ingest(paths, prune=prune, progress=progress)
        else:
            report = assistant.ingest(paths, prune=prune, progress=progress)
    for failure in report.failed:
        shown = escape(failure.path.replace("\n", "\\n"))
        err.print(f"[yellow]skipped[/yellow] {shown}: {escape(failure.reason)}", highlight=False)
    out.print(
        f"Indexed {len(report.added)} new and {len(report.updated)} changed files "
        f"({report.chunks_added} chunks); {len(report.unchanged)} unchanged, {len(report.removed)} pruned, "
        f"{len(report.failed)} failed, in {report.seconds:.1f} s. Index: {settings.index_dir}",
        highlight=False,
    )
    if report.failed:
        raise typer.Exit(1)
