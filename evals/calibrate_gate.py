"""Calibrate the evidence gate (`min_relevance`) for questions outside the collection.

    python evals/calibrate_gate.py [--data ../shared/datasets/squad_v1.1/dev-v1.1.json] [--keep 0.97]

Development data only: SQuAD v1.1 articles 0-31 (the reserved articles 32-47 are never read).
Articles 0-15 are indexed (each paragraph a document); their questions are in-collection, the
questions of articles 16-31 are about topics the collection does not hold. The gate reads the best
dense cosine of the retrieved passages; the chosen threshold is the highest that still lets
`--keep` of the in-collection questions through. Writes evals/out/gate.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/squad_v1.1/dev-v1.1.json"))
    parser.add_argument(
        "--keep", type=float, default=0.97, help="Share of in-collection questions to let through."
    )
    parser.add_argument("--questions", type=int, default=400, help="Questions sampled from each side.")
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    args = parser.parse_args()

    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.retrieval import evidence_score

    articles = json.loads(args.data.read_text())["data"][:32]
    inside, outside = articles[:16], articles[16:32]

    def questions(group: list[dict]) -> list[str]:
        return [qa["question"] for a in group for p in a["paragraphs"] for qa in p["qas"]]

    rng = random.Random(0)
    asked_in = rng.sample(questions(inside), args.questions)
    asked_out = rng.sample(questions(outside), args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        with corpus.open("w") as out:
            for a, article in enumerate(inside):
                for p, paragraph in enumerate(article["paragraphs"]):
                    line = {"_id": f"a{a}p{p}", "title": article["title"], "text": paragraph["context"]}
                    out.write(json.dumps(line) + "\n")
        assistant = Assistant(Settings(index_dir=Path(tmp) / "index"))
        assistant.ingest([corpus])
        score_in = np.array([evidence_score(assistant.retrieve(q, 5)) or 0.0 for q in asked_in])
        score_out = np.array([evidence_score(assistant.retrieve(q, 5)) or 0.0 for q in asked_out])
    threshold = float(np.quantile(score_in, 1 - args.keep))
    result = {
        "data": str(args.data),
        "indexed_articles": "0-15",
        "outside_articles": "16-31",
        "questions_each": args.questions,
        "keep": args.keep,
        "min_relevance": round(threshold, 3),
        "in_collection_let_through": round(float((score_in >= threshold).mean()), 3),
        "outside_abstained": round(float((score_out < threshold).mean()), 3),
        "in_collection_p05_p50": [round(float(x), 3) for x in np.quantile(score_in, [0.05, 0.5])],
        "outside_p50_p95": [round(float(x), 3) for x in np.quantile(score_out, [0.5, 0.95])],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
