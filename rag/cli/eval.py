"""`rag eval retrieval | answers | calibrate | support`: benchmark commands (parsing and printing only;
the runners live in rag.evaluation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from rag.cli.common import (
    err,
    fail,
    invoked_command,
    open_assistant,
    out,
    reported_errors,
    settings_from_flags,
)
from rag.evaluation.answers import rescore_answers, run_answers
from rag.evaluation.calibration import calibrate_run, from_development_articles, write_calibration
from rag.evaluation.datasets import load_beir, load_squad, split_articles
from rag.evaluation.reports import write_answer_report, write_report
from rag.evaluation.retrieval import run_benchmark
from rag.evaluation.scoring import MODES as ANSWER_MODES
from rag.evaluation.scoring import QUALITY_METRICS
from rag.evaluation.support import support_report
from rag.retrieval import MODES as RETRIEVAL_MODES

eval_app = typer.Typer(
    help="Benchmarks: retrieval quality and latency on public datasets.", no_args_is_help=True
)
DEFAULT_CALIBRATION = Path("evals/calibration.json")


def _progress(message: str) -> None:
    err.print(message, highlight=False)


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
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in RETRIEVAL_MODES]
    if unknown or not chosen:
        fail(f"unknown mode(s) {', '.join(unknown) or '(none)'}; use {', '.join(RETRIEVAL_MODES)}")
    try:
        squad = data_format == "squad"
        dataset = load_squad(data, articles).retrieval() if squad else load_beir(data, split)
    except (OSError, KeyError, ValueError) as exc:
        fail(f"cannot read {data} as {data_format}: {exc}")
    dataset = dataset.limited(limit)
    with reported_errors():
        results = run_benchmark(
            dataset,
            settings_from_flags(),
            chosen,
            index_dir=index,
            progress=_progress,
            latency_k=latency_k,
            latency_queries=latency_queries,
        )
    written = write_report(results, out_dir, invoked_command())
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
    out.print(table, soft_wrap=False)
    _progress("wrote " + ", ".join(str(p) for p in written))


@eval_app.command("answers")
def answers(
    data: Annotated[Path, typer.Option("--data", help="SQuAD 1.1 or 2.0 JSON file.")],
    data_format: Annotated[Literal["squad"], typer.Option("--format", help="Layout of --data.")] = "squad",
    split: Annotated[
        Literal["dev", "reserved"],
        typer.Option(
            "--split", help="dev: the development articles; reserved: the held-out ones (report only)."
        ),
    ] = "dev",
    articles: Annotated[
        str | None, typer.Option("--articles", help="Articles A:B (overrides --split), e.g. 0:11.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="A seeded sample of N questions.")] = None,
    modes: Annotated[str, typer.Option("--mode", help="Comma-separated: generative, strict, extractive.")] = (
        "generative,strict,extractive"
    ),
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for results.json, report.md, plot.")] = Path(
        "evals/out/answers"
    ),
    index: Annotated[Path | None, typer.Option("--index", help="Index folder to reuse or build.")] = None,
    rescore: Annotated[
        Path | None,
        typer.Option("--rescore", help="Score the records.jsonl of an earlier run (e.g. after calibrating)."),
    ] = None,
    resupport: Annotated[
        bool,
        typer.Option(
            "--resupport",
            help="With --rescore: score the stored generative answers' support again with the configured "
            "checker (e.g. RAG_SUPPORT_CHECKER=judge) and write the new records.",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Keep the answers of a run cut short in --out and ask only the remaining questions.",
        ),
    ] = False,
) -> None:
    """Answer SQuAD questions end to end: EM/F1, answered/abstain rates, citation quality, latency."""
    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    if not chosen or any(m not in ANSWER_MODES for m in chosen):
        fail(f"--mode takes {', '.join(ANSWER_MODES)}")
    settings = settings_from_flags()
    sink = None if rescore is not None else out_dir / "records.partial.jsonl"
    try:
        if articles is None:
            articles = split_articles(data, split)
        with reported_errors():
            if rescore is not None:
                results, records = rescore_answers(
                    rescore,
                    data,
                    settings,
                    articles=articles,
                    limit=limit,
                    modes=chosen,
                    score_support_again=resupport,
                    progress=_progress,
                )
            else:
                out_dir.mkdir(parents=True, exist_ok=True)
                if not resume:
                    sink.unlink(missing_ok=True)
                results, records = run_answers(
                    data,
                    settings,
                    articles=articles,
                    limit=limit,
                    modes=chosen,
                    index_dir=index,
                    progress=_progress,
                    sink=sink,
                )
    except (OSError, KeyError, ValueError) as exc:
        fail(f"cannot read {data} as {data_format}: {exc}")
    written = write_answer_report(results, records, out_dir, invoked_command())
    if sink is not None:
        sink.unlink(missing_ok=True)
    _print_modes(results)
    _progress("wrote " + ", ".join(str(p) for p in written))


def _print_modes(results: dict[str, Any]) -> None:
    table = Table(title=f"{results['dataset']} articles {results['articles']}")
    columns = (*QUALITY_METRICS, "latency_s_mean")
    table.add_column("mode")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for mode, m in results["modes"].items():
        table.add_row(mode, *(f"{m[c]:.1f}" if c != "latency_s_mean" else f"{m[c]:.2f}" for c in columns))
    out.print(table, soft_wrap=False)


@eval_app.command("calibrate")
def calibrate(
    records: Annotated[
        Path,
        typer.Option("--records", help="records.jsonl of a `rag eval answers` run on development articles."),
    ],
    min_answered: Annotated[
        float, typer.Option("--min-answered", help="Answer at least this % of answerable questions.")
    ] = 88.0,
    mode: Annotated[
        Literal["generative", "strict"],
        typer.Option("--mode", help="The mode to calibrate for (generative = flag and off)."),
    ] = "strict",
    output: Annotated[Path, typer.Option("--output", help="Where the chosen values are written.")] = (
        DEFAULT_CALIBRATION
    ),
) -> None:
    """Choose min_relevance, refusal_threshold (and for strict, support_threshold) on development records;
    write them with their source."""
    threshold = settings_from_flags().support_threshold
    entry = calibrate_run(records, min_answered, mode, threshold, invoked_command())
    if not from_development_articles(entry):
        err.print(
            f"[yellow]warning:[/yellow] {records} is not from development articles ({entry.get('articles')})"
        )
    write_calibration(output, f"answers_{mode}", entry)
    out.print_json(json.dumps(entry))


@eval_app.command("support")
def support(
    wice: Annotated[Path, typer.Option("--wice", help="WiCE folder.")] = Path("../shared/datasets/wice"),
    scifact: Annotated[Path, typer.Option("--scifact", help="SciFact folder with claims_*.jsonl.")] = Path(
        "../shared/datasets/scifact_beir"
    ),
    halueval: Annotated[Path, typer.Option("--halueval", help="HaluEval folder with qa_data.json.")] = Path(
        "../shared/datasets/halueval"
    ),
    fit: Annotated[bool, typer.Option("--fit", help="Fit the offline checker on WiCE dev first.")] = False,
    reserved: Annotated[
        bool, typer.Option("--reserved", help="Also score WiCE test and SciFact claims_dev.")
    ] = False,
    output: Annotated[
        Path, typer.Option("--output", help="Where figures are written.")
    ] = DEFAULT_CALIBRATION,
) -> None:
    """ROC AUC of the support checker (supported vs the rest) on WiCE, SciFact and HaluEval QA, and its cost
    per claim."""
    checker = open_assistant(settings_from_flags()).support_checker
    with reported_errors():
        report = support_report(
            checker, wice, scifact, halueval, fit=fit, reserved=reserved, progress=_progress
        )
    report["command"] = invoked_command()
    write_calibration(output, "support", report)
    out.print_json(json.dumps(report))
