"""What the cheap claim checks (rag/support/claims.py) add to the offline support checker, on development
data only: HaluEval QA records 0-999 (right vs hallucinated answer against its knowledge, the question
given apart, as the answering path gives it), SciFact claims_train (SUPPORT vs the rest against each cited
abstract) and WiCE dev (supported vs the rest).

    python evals/claim_checks.py --data ../shared/datasets [--records 1000] [--no-checker]

For each set: how often the checks flag right and wrong claims, the ROC AUC of the checks alone, of the
evidence checker, and of the evidence checker with flagged claims set to 0 (what the product does).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rag.evaluation.support import load_scifact, load_wice, roc_auc
from rag.grounding import claim_of
from rag.support import check_claim

Rows = tuple[list[str], list[list[str]], list[str], np.ndarray]
"""Claims, their evidence texts, the question each answers ("" for none), and labels (True: right)."""


def halueval(folder: Path, records: int) -> Rows:
    claims, evidence, questions, labels = [], [], [], []
    with open(folder / "qa_data.json", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i >= min(records, 8000):
                break
            record = json.loads(line)
            for right, answer in ((True, record["right_answer"]), (False, record["hallucinated_answer"])):
                claims.append(answer)
                evidence.append([record["knowledge"]])
                questions.append(record["question"])
                labels.append(right)
    return claims, evidence, questions, np.asarray(labels)


def without_question(examples: tuple[list[str], list[list[str]], np.ndarray]) -> Rows:
    claims, evidence, labels = examples
    return claims, evidence, [""] * len(claims), labels


def measure(name: str, rows: Rows, checker: object | None) -> dict[str, object]:
    claims, evidence, questions, labels = rows
    started = time.perf_counter()
    flags = np.asarray([check_claim(c, e, q).contradicted for c, e, q in zip(claims, evidence, questions)])
    result: dict[str, object] = {
        "set": name,
        "claims": len(claims),
        "flagged_right_pct": round(100 * float(flags[labels].mean()), 1),
        "flagged_wrong_pct": round(100 * float(flags[~labels].mean()), 1),
        "checks_ms_per_claim": round(1000 * (time.perf_counter() - started) / len(claims), 2),
        "checks_alone_auc": round(roc_auc(labels, (~flags).astype(float)), 4),
    }
    if checker is not None:
        read = [claim_of(c, q or None) for c, q in zip(claims, questions)]
        scores = np.asarray(checker.score(read, evidence))  # type: ignore[attr-defined]
        result["evidence_auc"] = round(roc_auc(labels, scores), 4)
        result["evidence_with_checks_auc"] = round(roc_auc(labels, np.where(flags, 0.0, scores)), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--records", type=int, default=1000, help="HaluEval development records (max 8000)")
    parser.add_argument("--no-checker", action="store_true", help="the checks alone (no embedder)")
    args = parser.parse_args()
    checker = None
    if not args.no_checker:
        from rag.embeddings import SentenceTransformerEmbedder
        from rag.support import EvidenceSupportChecker

        checker = EvidenceSupportChecker(SentenceTransformerEmbedder())
    sets = {
        "halueval_qa_dev": lambda: halueval(args.data / "halueval", args.records),
        "scifact_claims_train": lambda: without_question(load_scifact(args.data / "scifact_beir", "train")),
        "wice_dev": lambda: without_question(load_wice(args.data / "wice", "dev")),
    }
    for name, load in sets.items():
        print(json.dumps(measure(name, load(), checker)), flush=True)


if __name__ == "__main__":
    main()
