"""Score rag on the real-documentation development set (evals/devset/questions.jsonl).

    python evals/devset_score.py [--node-docs DIR] [--limit 30] [--out evals/RESULTS-devset.md]

Indexes the eight Node.js API pages that Debian's `nodejs` package installs (read in place, never
copied) and the repository's documents/, asks every question (follow-ups with their history) with
the default settings (RAG_* variables and rag.toml apply), and writes a Markdown report to `--out`
and every answer with its judgement to the same path with a .json suffix (while it runs, one line
per answer goes to .records.jsonl). `--limit` draws a sample stratified by kind. Run it from the
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.config import Settings  # noqa: E402
from rag.evaluation.devset import (  # noqa: E402
    load_questions,
    markdown_report,
    node_docs_folder,
    run_devset,
    sample_questions,
)

QUESTIONS = Path(__file__).parent / "devset" / "questions.jsonl"
REPORTED_SETTINGS = (
    "generator",
    "embedder",
    "answer_style",
    "grounding_mode",
    "support_checker",
    "retrieval_mode",
    "top_k",
    "min_relevance",
    "refusal_threshold",
)


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
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".records.jsonl").unlink(missing_ok=True)

    node_docs = node_docs_folder(args.node_docs)
    if node_docs is None:
        sys.exit(
            "The Node.js API pages were not found: install Debian's nodejs package "
            "(apt-get install nodejs) or pass --node-docs FOLDER."
        )
    questions = sample_questions(load_questions(args.questions), args.limit, args.seed)
    settings = Settings()
    results, records = run_devset(
        questions,
        settings,
        node_docs=node_docs,
        documents=args.documents,
        index_root=args.index_root,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
        sink=args.out.with_suffix(".records.jsonl"),
    )
    command = "python evals/devset_score.py " + shlex.join(sys.argv[1:])
    results.update(
        command=command.strip(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        node_docs=str(node_docs),
        settings={name: getattr(settings, name) for name in REPORTED_SETTINGS},
    )
    args.out.with_suffix(".json").write_text(
        json.dumps({**results, "records": records}, indent=2, default=str)
    )
    args.out.with_suffix(".records.jsonl").unlink()
    setting_lines = "".join(f"- `{name}`: `{value}`\n" for name, value in results["settings"].items())
    args.out.write_text(
        "# Real-documentation development set: results\n\n"
        f"{len(records)} questions of `evals/devset/questions.jsonl` over the Node.js API pages in "
        f"`{node_docs}` and over `documents/`, measured {results['date']} with:\n\n{setting_lines}\n"
        "An answerable question is right when the answer matches a gold answer (token F1 >= 0.5 or "
        "contains one) and cites a document that states it; every other question is right when the "
        "product abstains. Accuracy counts a false refusal exactly as much as a false answer.\n\n"
        + markdown_report(results, records, results["command"])
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
