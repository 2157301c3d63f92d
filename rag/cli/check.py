"""`rag check`: verify an index on disk, say what is wrong and what to do; `--repair` rolls back to an
intact generation. Exit code 0 when the index is sound (or was repaired), 1 when it is damaged."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from rag.cli.common import IndexOption, err, fail, out, reported_errors, settings_from_flags


def check(
    index: IndexOption = None,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Make the newest intact generation live when the live one is damaged."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Verify an index: manifest, catalog, vectors, BM25 files, and that they hold the same chunks."""
    from rag.integrity import check_index, roll_back

    index_dir = settings_from_flags(index_dir=index).index_dir
    report = check_index(index_dir)
    if not report.exists:
        fail(report.advice())
    repaired = None
    if repair and not report.healthy:
        with reported_errors():
            repaired = roll_back(index_dir)
        report = check_index(index_dir)
    if as_json:
        data = report.as_dict()
        data["repaired_to"] = repaired.folder.name if repaired else None
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _print(report, repaired)
    if not report.healthy:
        raise typer.Exit(1)


def _print(report, repaired) -> None:  # noqa: ANN001
    """The report, one line per generation and one per problem, then what to do."""

    def line(text: str) -> None:
        out.print(text, highlight=False, markup=False)

    line(f"Index {report.index_dir}")
    if report.current_problem:
        line(f"  CURRENT: {report.current_problem}: it does not say which generation is live")
    else:
        line(f"  CURRENT: names {report.live}")
    for generation in report.generations:
        live = " (live)" if generation.folder.name == report.live else ""
        state = f"intact, {generation.summary()}" if generation.intact else "DAMAGED"
        if not generation.intact and not live and report.healthy:
            state += " (not live: the next ingest replaces or removes it)"
        line(f"  {generation.folder.name}{live}: {state}")
        for problem in generation.problems:
            line(f"    {problem}")
        for note in generation.notes:
            line(f"    note: {note}")
    for leftover in report.leftovers:
        line(f"  {leftover}: leftover of an interrupted write (the next ingest removes it)")
    if repaired is not None:
        line(f"Repaired: {repaired.folder.name} is live ({repaired.summary()}).")
    message = report.advice()
    if report.healthy:
        line(message)
    else:
        err.print(f"[red]damaged:[/red] {message}", highlight=False, soft_wrap=True)
