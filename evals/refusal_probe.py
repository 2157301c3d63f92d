"""The model's refusal probability in the product's sentence style, before it writes.

For the questions of `bench_ask.py` about documents/ (plus two off-collection ones) and a seeded sample
of SQuAD 2.0 development questions: the probability that the packaged model starts its reply with
"The documents do not contain...", and the evidence score, one JSON line each; a summary at the end.
It shows whether a `refusal_threshold` calibrated on short SQuAD answers suits plain questions.

    python evals/refusal_probe.py [--limit 60] [--out evals/out/refusal-probe.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from rag.answering import REFUSAL_PROBE_TOKENS
from rag.assistant import Assistant
from rag.config import Settings
from rag.evaluation.datasets import load_squad
from rag.evaluation.retrieval import build_index
from rag.evaluation.support import roc_auc
from rag.grounding import NO_ANSWER, build_messages
from rag.retrieval import evidence_score

sys.path.insert(0, str(Path(__file__).parent))
from bench_ask import QUESTIONS  # noqa: E402

OFF_COLLECTION = ["What is the best recipe for chocolate cake?", "Who won the 1998 football world cup?"]
SQUAD2 = Path("../shared/datasets/squad_v2_cs224n_half/dev-v2.0.cs224n-half.json")


def probe(assistant: Assistant, question: str) -> tuple[float, float]:
    passages = assistant.retrieve(question)
    messages = build_messages(question, passages, "sentence")
    logprob = assistant.generator.continuation_logprob(messages, NO_ANSWER, REFUSAL_PROBE_TOKENS)
    return math.exp(logprob), evidence_score(passages) or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=60, help="SQuAD 2.0 development questions sampled.")
    parser.add_argument("--index", type=Path, default=Path("index/default"), help="Index of documents/.")
    parser.add_argument("--squad-index", type=Path, default=None, help="Index of the SQuAD dev articles.")
    parser.add_argument("--out", type=Path, default=Path("evals/out/refusal-probe.jsonl"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    docs = Assistant(Settings(index_dir=args.index))
    articles = load_squad(SQUAD2, "0:11")
    questions = articles.sample(args.limit)
    squad = build_index(articles.retrieval(), Settings(), args.squad_index)
    squad.__dict__["generator"] = docs.generator
    rows = []
    with open(args.out, "w", encoding="utf-8") as sink:
        for question in QUESTIONS + OFF_COLLECTION:
            refusal, evidence = probe(docs, question)
            rows.append({"set": "documents", "question": question, "refusal": refusal, "evidence": evidence})
            sink.write(json.dumps(rows[-1]) + "\n")
        for q in questions:
            refusal, evidence = probe(squad, q.question)
            rows.append(
                {"set": "squad2-dev", "question": q.question, "answerable": q.answerable, "refusal": refusal}
            )
            sink.write(json.dumps(rows[-1]) + "\n")
    for row in rows[: len(QUESTIONS) + len(OFF_COLLECTION)]:
        print(f"{row['refusal']:.3f}  {row['question']}")
    sampled = [r for r in rows if r["set"] == "squad2-dev"]
    labels = np.asarray([r["answerable"] for r in sampled])
    scores = -np.asarray([r["refusal"] for r in sampled])
    print(
        f"SQuAD 2.0 dev, {len(sampled)} questions: ROC AUC (answerable vs not) {roc_auc(labels, scores):.3f}"
    )


if __name__ == "__main__":
    main()
