"""How often the cheap claim checks (rag/support/claims.py) flag right and wrong claims, on
development data only: HaluEval QA records 0-7,999 (right vs hallucinated answer against its
knowledge) and SciFact claims_train (SUPPORT vs CONTRADICT claims against the cited abstract,
read as one cited passage).

    python evals/claim_checks.py --data ../shared/datasets [--limit N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.metrics import roc_auc_score

from rag.support.claims import check_claim


def halueval(folder: Path, limit: int) -> list[tuple[int, bool]]:
    """(label right=1 / hallucinated=0, flagged) for the development records."""
    rows = []
    with open(folder / "halueval" / "qa_data.json", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i >= min(limit, 8000):
                break
            record = json.loads(line)
            for label, answer in ((1, record["right_answer"]), (0, record["hallucinated_answer"])):
                check = check_claim(answer, [record["knowledge"]], record["question"])
                rows.append((label, check.contradicted))
    return rows


def scifact(folder: Path, limit: int) -> list[tuple[int, bool]]:
    """(label SUPPORT=1 / CONTRADICT=0, flagged) for claims_train claims against the cited abstract."""
    sentences = {}
    with open(folder / "scifact_beir" / "corpus_sentences.jsonl", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            sentences[str(doc["doc_id"])] = [doc["title"], *doc["abstract"]]
    rows = []
    with open(folder / "scifact_beir" / "claims_train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            claim = json.loads(line)
            for doc_id, sets in claim["evidence"].items():
                for evidence in sets:
                    check = check_claim(claim["claim"], [" ".join(sentences[doc_id])])
                    rows.append((int(evidence["label"] == "SUPPORT"), check.contradicted))
            if len(rows) >= limit:
                break
    return rows


def summary(name: str, rows: list[tuple[int, bool]]) -> str:
    right = [f for label, f in rows if label == 1]
    wrong = [f for label, f in rows if label == 0]
    auc = roc_auc_score([label for label, _ in rows], [0.0 if f else 1.0 for _, f in rows])
    return (
        f"{name}: {len(rows)} claims; flagged {100 * sum(wrong) / len(wrong):.1f} % of wrong, "
        f"{100 * sum(right) / len(right):.1f} % of right; ROC AUC {auc:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--limit", type=int, default=8000)
    args = parser.parse_args()
    print(summary("HaluEval QA dev", halueval(args.data, args.limit)))
    print(summary("SciFact claims_train", scifact(args.data, args.limit)))


if __name__ == "__main__":
    main()
