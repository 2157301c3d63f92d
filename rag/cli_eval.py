"""`rag eval ...`: benchmark commands; parsing and printing only, the runners live in rag.evaluation."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

eval_app = typer.Typer(
    help="Benchmarks: retrieval quality and latency on public datasets.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


@eval_app.command("retrieval")
def retrieval(
    data: Annotated[
        Path, typer.Option("--data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or SQuAD.")
    ],
    split: Annotated[
        str, typer.Option("--split", help="BEIR qrels split: test (report) or train (tune).")
    ] = "test",
    modes: Annotated[str, typer.Option("--modes", help="Comma-separated modes: dense, bm25, hybrid.")] = (
        "dense,bm25,hybrid"
    ),
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N judged queries.")] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for results.json, report.md and the plot.")
    ] = Path("evals/out/retrieval"),
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Index folder to reuse (built there when empty); default: temporary."),
    ] = None,
    data_format: Annotated[
        Literal["beir", "squad"], typer.Option("--format", help="Layout of --data.")
    ] = "beir",
    articles: Annotated[str, typer.Option("--articles", help="SQuAD articles to use, e.g. 0:32.")] = "0:32",
    latency_k: Annotated[
        int, typer.Option("--latency-k", help="Also time retrieval at this depth (answering: 5); 0: skip.")
    ] = 5,
    latency_queries: Annotated[
        int, typer.Option("--latency-queries", help="Queries timed at --latency-k.")
    ] = 200,
) -> None:
    """Score retrieval modes: nDCG@10, recall@5/10/100, MRR@10 and latency (query embedding included)."""
    from rag.cli import _fail, _settings
    from rag.errors import RagError
    from rag.evaluation.retrieval import load_beir, load_squad, run_benchmark, write_report
    from rag.retrieval import MODES

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MODES]
    if unknown or not chosen:
        err.print(
            f"[red]error:[/red] unknown mode(s) {', '.join(unknown) or '(none)'}; use {', '.join(MODES)}"
        )
        raise typer.Exit(2)
    try:
        dataset = load_squad(data, articles) if data_format == "squad" else load_beir(data, split)
    except (OSError, KeyError, ValueError) as exc:
        err.print(f"[red]error:[/red] cannot read {data} as {data_format}: {exc}")
        raise typer.Exit(2) from None
    dataset = dataset.limited(limit)
    try:
        results = run_benchmark(
            dataset,
            _settings(),
            chosen,
            index_dir=index,
            progress=lambda m: err.print(m, highlight=False),
            latency_k=latency_k,
            latency_queries=latency_queries,
        )
    except RagError as exc:
        _fail(exc)
        return
    command = "rag " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    written = write_report(results, out_dir, command)
    table = Table(title=f"{results['dataset']} ({results['split']}): {len(dataset.queries)} queries")
    for column in ("mode", "nDCG@10", "R@5", "R@10", "R@100", "MRR@10", "p50 ms", "p95 ms"):
        table.add_column(column)
    timed = latency_k > 0 and latency_queries > 0
    if timed:
        table.add_column(f"p50 ms k={latency_k}")
        table.add_column(f"p95 ms k={latency_k}")
    for mode, m in results["modes"].items():
        at_k = [f"{m['latency_k_ms_p50']:.1f}", f"{m['latency_k_ms_p95']:.1f}"] if timed else []
        table.add_row(
            mode,
            *(f"{m[k]:.4f}" for k in ("ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10")),
            f"{m['latency_ms_p50']:.1f}",
            f"{m['latency_ms_p95']:.1f}",
            *at_k,
        )
    out.print(table)
    err.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
