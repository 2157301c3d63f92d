"""Generate unanswerable questions from answerable ones (entity, number, date and antonym swaps, negation).

    python evals/make_unanswerables.py [--squad ../shared/datasets/squad_v1.1] [--seed 0]
        [--max-per-question N] [--out evals/out/unanswerables]

Reads the SQuAD v1.1 development articles only (the first 32 in file order; the last 16 are reserved
and never read) and the answerable questions of the development set over `documents/`
(evals/devset/questions.jsonl), and writes SQuAD 2.0 files: every original question answerable, each
generated one `is_impossible` with the original's answers as `plausible_answers` and a `swap` record
(kind, from, to, original id and question). See rag/evaluation/swaps.py for the rules and checks.

    squad11-dev-swaps.json   the 32 SQuAD v1.1 development articles
    documents-swaps.json     one article per file of documents/, paragraphs between blank lines
    counts.json              questions per swap kind, per file, with the command and seed

The output is deterministic for a seed. Score it end to end with, e.g.:

    rag eval answers --data evals/out/unanswerables/squad11-dev-swaps.json --articles 0:4 --limit 60 \\
        --mode generative --out evals/out/answers-swaps
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from rag.evaluation.datasets import split_articles, squad_file
from rag.evaluation.devset import load_questions
from rag.evaluation.swaps import KINDS, squad_from_documents, unanswerable_squad

DEVSET = Path(__file__).parent / "devset" / "questions.jsonl"


def squad_dev_articles(path: Path) -> list[dict]:
    """The development articles of the SQuAD v1.1 file (see `split_articles`), never the reserved ones."""
    file = squad_file(path)
    data = json.loads(file.read_text(encoding="utf-8"))["data"]
    if len(data) != 48:
        sys.exit(f"{file} holds {len(data)} articles, not the 48 of SQuAD v1.1 dev: its split is unknown")
    _, _, stop = split_articles(file, "dev").partition(":")
    return data[: int(stop)]


def documents_articles(documents: Path, devset: Path) -> list[dict]:
    """SQuAD 1.1-style articles over the files of `documents` with the development set's answerable
    questions about them (a question goes to the paragraph of its source that holds its answer)."""
    from rag.parsers import parse_file

    texts = {
        f"documents/{p.name}": "\n\n".join(d.text for d in parse_file(p))
        for p in sorted(documents.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }
    questions = [
        (q.id, q.question, q.source, q.answers)
        for q in load_questions(devset)
        if q.collection == "documents" and q.kind == "answerable"
    ]
    return squad_from_documents(texts, questions)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--squad", type=Path, default=Path("../shared/datasets/squad_v1.1"))
    parser.add_argument("--documents", type=Path, default=Path("documents"))
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"Comma-separated swap kinds (default: {','.join(KINDS)})."
    )
    parser.add_argument(
        "--max-per-question", type=int, default=None, help="At most this many generated per question."
    )
    parser.add_argument("--out", type=Path, default=Path("evals/out/unanswerables"))
    args = parser.parse_args()
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        sys.exit(f"--kinds takes {', '.join(KINDS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "command": ("python evals/make_unanswerables.py " + shlex.join(sys.argv[1:])).strip(),
        "seed": args.seed,
        "max_per_question": args.max_per_question,
        "files": {},
    }
    sources = {
        "squad11-dev-swaps.json": (squad_dev_articles(args.squad), "SQuAD v1.1 dev, articles 0:32"),
        "documents-swaps.json": (documents_articles(args.documents, args.devset), "documents/ + devset"),
    }
    for name, (data, origin) in sources.items():
        articles, counts = unanswerable_squad(
            data, seed=args.seed, kinds=kinds, max_per_question=args.max_per_question
        )
        out = args.out / name
        out.write_text(
            json.dumps({"version": "v2.0", "data": articles}, ensure_ascii=False), encoding="utf-8"
        )
        summary["files"][name] = {"source": origin, "articles": len(articles), "counts": counts}
        generated = sum(v for k, v in counts.items() if k != "original")
        print(f"{out}: {counts['original']} answerable, {generated} generated: {counts}", file=sys.stderr)
    (args.out / "counts.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"wrote {args.out / 'counts.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
