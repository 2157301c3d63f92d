"""`rag eval answers | calibrate | support`: answer and grounding benchmarks (parsing and printing only)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from rag.cli_eval import err, eval_app, out

DEFAULT_CALIBRATION = Path("evals/calibration.json")


def _command() -> str:
    return "rag " + " ".join(shlex.quote(a) for a in sys.argv[1:])


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
) -> None:
    """Answer SQuAD questions end to end: EM/F1, answered/abstain rates, citation quality, latency."""
    from rag.cli import _fail, _settings
    from rag.errors import RagError
    from rag.evaluation.answers import MODES, results_for, run_answers, write_answer_report

    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    if not chosen or any(m not in MODES for m in chosen):
        err.print(f"[red]error:[/red] --mode takes {', '.join(MODES)}")
        raise typer.Exit(2)
    if articles is None:
        articles = _split_articles(data, split)
    if rescore is not None:
        records = [
            json.loads(line) for line in rescore.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        meta = {"dataset": data.name, "articles": articles, "limit": limit, "rescored": str(rescore)}
        settings = _settings()
        checker_name = "as recorded"
        if resupport:
            from rag.cli import _assistant
            from rag.evaluation.answers import load_squad_questions
            from rag.evaluation.answers import resupport as score_again

            dataset, _ = load_squad_questions(data, articles)
            checker = _assistant(settings).support_checker
            records = score_again(
                records,
                dataset.corpus,
                checker,
                short_answers=settings.answer_style == "short",
                progress=lambda m: err.print(m, highlight=False),
            )
            checker_name = checker.name
        results = results_for(records, settings, chosen, meta, checker_name)
        written = write_answer_report(results, records, out_dir, _command())
        _print_modes(results)
        err.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    sink = out_dir / "records.partial.jsonl"
    sink.unlink(missing_ok=True)
    try:
        results, records = run_answers(
            data,
            _settings(),
            articles=articles,
            limit=limit,
            modes=chosen,
            index_dir=index,
            progress=lambda m: err.print(m, highlight=False),
            sink=sink,
        )
    except RagError as exc:
        _fail(exc)
        return
    except (OSError, KeyError, ValueError) as exc:
        err.print(f"[red]error:[/red] cannot read {data} as {data_format}: {exc}")
        raise typer.Exit(2) from None
    written = write_answer_report(results, records, out_dir, _command())
    sink.unlink(missing_ok=True)
    _print_modes(results)
    err.print("wrote " + ", ".join(str(p) for p in written), highlight=False)


def _split_articles(data: Path, split: str) -> str:
    """The development / reserved articles of the SQuAD files in ../shared/datasets/README.md."""
    from rag.evaluation.answers import squad_file

    count = len(json.loads(squad_file(data).read_text(encoding="utf-8"))["data"])
    dev = 32 if count == 48 else 11 if count == 16 else count * 2 // 3
    return f"0:{dev}" if split == "dev" else f"{dev}:{count}"


def _print_modes(results: dict) -> None:
    table = Table(title=f"{results['dataset']} articles {results['articles']}")
    from rag.evaluation.answers import QUALITY_METRICS

    columns = (*QUALITY_METRICS, "latency_s_mean")
    table.add_column("mode")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for mode, m in results["modes"].items():
        table.add_row(mode, *(f"{m[c]:.1f}" if c != "latency_s_mean" else f"{m[c]:.2f}" for c in columns))
    out.print(table)


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
    from rag.cli import _settings
    from rag.evaluation.answers import calibrate as choose

    rows = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines() if line.strip()]
    run = json.loads((records.parent / "results.json").read_text(encoding="utf-8"))
    if not str(run.get("articles", "")).startswith("0:"):
        err.print(
            f"[yellow]warning:[/yellow] {records} is not from development articles ({run.get('articles')})"
        )
    chosen = choose(rows, min_answered, mode, _settings().support_threshold)
    existing = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {}
    existing.pop("answers", None)  # the single entry of earlier versions
    key = f"answers_{mode}"
    existing[key] = {
        **chosen,
        "data": run.get("dataset"),
        "articles": run.get("articles"),
        "questions": len(rows),
        "support_checker": run.get("support_checker"),
        "records": str(records),
        "command": _command(),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
    out.print_json(json.dumps(existing[key]))


@eval_app.command("support")
def support(
    wice: Annotated[Path, typer.Option("--wice", help="WiCE folder.")] = Path("../shared/datasets/wice"),
    scifact: Annotated[Path, typer.Option("--scifact", help="SciFact folder with claims_*.jsonl.")] = Path(
        "../shared/datasets/scifact_beir"
    ),
    fit: Annotated[bool, typer.Option("--fit", help="Fit the offline checker on WiCE dev first.")] = False,
    reserved: Annotated[
        bool, typer.Option("--reserved", help="Also score WiCE test and SciFact claims_dev.")
    ] = False,
    output: Annotated[
        Path, typer.Option("--output", help="Where figures are written.")
    ] = DEFAULT_CALIBRATION,
) -> None:
    """ROC AUC of the support checker (supported vs the rest) on WiCE and SciFact, and its cost per claim."""
    from rag.cli import _assistant, _settings
    from rag.evaluation.support import evaluate, fit_checker, load_scifact, load_wice
    from rag.support import EvidenceSupportChecker

    assistant = _assistant(_settings())
    checker = assistant.support_checker
    report: dict = {"checker": checker.name}
    if fit:
        if not isinstance(checker, EvidenceSupportChecker):
            err.print("[red]error:[/red] --fit fits the offline checker; unset support_model")
            raise typer.Exit(2)
        fitted = fit_checker(checker, load_wice(wice, "dev"))
        checker = EvidenceSupportChecker(checker.embedder, fitted["weights"], fitted["bias"])
        report["fit"] = {**fitted, "on": "WiCE dev"}
    sets = {
        "wice_dev": lambda: load_wice(wice, "dev"),
        "scifact_claims_train": lambda: load_scifact(scifact, "train"),
    }
    if reserved:
        sets |= {
            "wice_test": lambda: load_wice(wice, "test"),
            "scifact_claims_dev": lambda: load_scifact(scifact, "dev"),
        }
    for name, load in sets.items():
        report[name] = evaluate(checker, load())
        err.print(f"{name}: {report[name]}", highlight=False)
    report["command"] = _command()
    existing = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {}
    existing["support"] = report
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
    out.print_json(json.dumps(report))
