"""Score rag on the real-documentation development set (evals/devset/questions.jsonl).

    python evals/devset_score.py [--node-docs DIR] [--limit 30] [--out evals/RESULTS-devset.md]

Indexes the eight Node.js API pages that Debian's `nodejs` package installs (read in place, never
copied) and the repository's documents/, asks every question (follow-ups with their history) with
the default settings (RAG_* variables and rag.toml apply), and writes a Markdown report to `--out`
and every answer with its judgement to the same path with a .json suffix (while it runs, one line
per answer goes to .records.jsonl). `--limit` draws a sample stratified by kind. `--records FILE`
reports the answers a run stored there (one cut short, too) without asking again. Run it from the
repository root, so that documents/ is found.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.config import Settings  # noqa: E402
from rag.evaluation.devset import (  # noqa: E402
    REPORTED_SETTINGS,
    confidence_curve,
    load_questions,
    markdown_report,
    node_docs_folder,
    recalibrated,
    run_devset,
    sample_questions,
    score,
)
from rag.signals import DEFAULT_CALIBRATOR, Calibrator  # noqa: E402

QUESTIONS = Path(__file__).parent / "devset" / "questions.jsonl"
CONFIDENCE_POINTS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
"""The `min_confidence` values the report shows (0: report only, nothing withheld)."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="The question file (JSON lines).")
    parser.add_argument(
        "--node-docs", type=Path, default=None, help="Folder of the Node.js API pages (default: from dpkg)."
    )
    parser.add_argument("--documents", type=Path, default=Path("documents"), help="The documents collection.")
    parser.add_argument("--limit", type=int, default=None, help="Score a sample of this many questions.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sample.")
    parser.add_argument("--index-root", type=Path, default=None, help="Keep (and reuse) the indexes here.")
    parser.add_argument("--out", type=Path, default=Path("evals/RESULTS-devset.md"))
    parser.add_argument(
        "--records",
        type=Path,
        default=None,
        help="Report the answers stored in this JSON-lines file (a run's .records.jsonl) instead of asking.",
    )
    parser.add_argument(
        "--calibrator",
        type=Path,
        default=None,
        help="With --records: read each answer's confidence again with this calibrator (default: the "
        "configured or shipped one).",
    )
    args = parser.parse_args()
    command = ("python evals/devset_score.py " + shlex.join(sys.argv[1:])).strip()
    settings = Settings()
    if args.records:
        lines = args.records.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        path = args.calibrator or settings.calibrator_path or DEFAULT_CALIBRATOR
        if any(r.get("signals") for r in records) and Path(path).exists():
            records = recalibrated(records, Calibrator.load(Path(path)))
        write_report(
            args.out, {"questions": len(records), "scores": score(records)}, records, command, settings
        )
        return
    node_docs = node_docs_folder(args.node_docs)
    if node_docs is None:
        sys.exit(
            "The Node.js API pages were not found: install Debian's nodejs package "
            "(apt-get install nodejs) or pass --node-docs FOLDER."
        )
    sink = args.out.with_suffix(".records.jsonl")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sink.unlink(missing_ok=True)
    questions = sample_questions(load_questions(args.questions), args.limit, args.seed)
    results, records = run_devset(
        questions,
        settings,
        node_docs=node_docs,
        documents=args.documents,
        index_root=args.index_root,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
        sink=sink,
    )
    write_report(args.out, {**results, "node_docs": str(node_docs)}, records, command, settings)
    # the sink stays (git-ignored): it holds the hidden states, so a refit calibrator rescores the run


def write_report(
    out: Path, results: dict[str, Any], records: list[dict[str, Any]], command: str, settings: Settings
) -> None:
    """The Markdown report at `out` and the results with every record beside it (.json)."""
    if any(r.get("confidence") is not None for r in records):
        results["confidence_curve"] = confidence_curve(records, CONFIDENCE_POINTS)
    records = [{k: v for k, v in r.items() if k != "hidden_state"} for r in records]
    results = {
        **results,
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {name: getattr(settings, name) for name in REPORTED_SETTINGS},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**results, "records": records}, indent=2, default=str))
    setting_lines = "".join(f"- `{name}`: `{value}`\n" for name, value in results["settings"].items())
    out.write_text(
        "# Real-documentation development set: results\n\n"
        f"{len(records)} questions of `evals/devset/questions.jsonl` over the Node.js API pages of Debian's "
        f"`nodejs` package and over `documents/`, reported {results['date']}, with:\n\n{setting_lines}\n"
        "An answerable question is right when the answer matches a gold answer (token F1 >= 0.5 or "
        "contains one) and cites a document that states it; every other question is right when the "
        "product abstains. Accuracy counts a false refusal exactly as much as a false answer.\n\n"
        + markdown_report(results, records, command)
    )
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
