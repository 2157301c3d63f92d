"""Support-checker benchmark: ROC AUC on WiCE (supported vs the rest) and SciFact claims (SUPPORT vs
the rest), cost per claim, and fitting the offline checker's logistic weights on development data."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import InvalidInputError
from rag.grounding import claim_of
from rag.support import FEATURE_NAMES, EvidenceSupportChecker, SupportChecker

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

Examples = tuple[list[str], list[list[str]], np.ndarray]
# scikit-learn is imported where it is used: it takes a second and a half, which `rag --help` need not wait.


def load_wice(folder: Path, split: str) -> Examples:
    """WiCE claim-level entailment: each claim with its article's evidence sentences; label supported."""
    path = folder / "data" / "entailment_retrieval" / "claim" / f"{split}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (
        [r["claim"] for r in rows],
        [r["evidence"] for r in rows],
        np.asarray([r["label"] == "supported" for r in rows]),
    )


def load_scifact(folder: Path, split: str) -> Examples:
    """SciFact claims against each cited abstract: SUPPORT vs the rest (CONTRADICT or not enough info)."""
    abstracts = {}
    with open(folder / "corpus_sentences.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            abstracts[str(record["doc_id"])] = record["abstract"]
    claims, evidence, labels = [], [], []
    for line in (folder / f"claims_{split}.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for doc in record.get("cited_doc_ids", []):
            if str(doc) not in abstracts:
                continue
            found = record.get("evidence", {}).get(str(doc), [])
            claims.append(record["claim"])
            evidence.append(abstracts[str(doc)])
            labels.append(any(e["label"] == "SUPPORT" for e in found))
    return claims, evidence, np.asarray(labels)


def load_halueval(folder: Path, records: int = 1000, first: int = 0) -> Examples:
    """HaluEval QA: each question's right and hallucinated answer as claims (read with their question, as
    short answers are) against its knowledge; label right. Records 0-7,999 are development data."""
    claims, evidence, labels = [], [], []
    with open(folder / "qa_data.json", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i < first:
                continue
            if i >= first + records:
                break
            record = json.loads(line)
            for right, answer in ((True, record["right_answer"]), (False, record["hallucinated_answer"])):
                claims.append(claim_of(answer, record["question"]))
                evidence.append([record["knowledge"]])
                labels.append(right)
    return claims, evidence, np.asarray(labels)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance a positive outscores a negative; NaN when
    the labels hold one class only."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def _logistic(l2: float) -> LogisticRegression:
    """L2-regularized logistic regression with penalty `l2` on the weights (the bias is not penalized)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0 / l2, tol=1e-8, max_iter=1000)


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1.0) -> tuple[list[float], float]:
    """Weights and bias of an L2-regularized logistic regression (bias unpenalized), rounded for storing."""
    model = _logistic(l2).fit(features, np.asarray(labels, dtype=bool))
    return [round(float(v), 4) for v in model.coef_[0]], round(float(model.intercept_[0]), 4)


def cross_validated_auc(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """ROC AUC of logistic fits scored on held-out stratified folds: what a fit is worth on unseen claims."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(labels, dtype=bool)
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(_logistic(1.0), features, labels, cv=split, method="decision_function")
    return roc_auc(labels, scores)


def evaluate(checker: SupportChecker, examples: Examples) -> dict[str, Any]:
    """ROC AUC of the checker's scores and its cost per claim."""
    claims, evidence, labels = examples
    started = time.perf_counter()
    scores = np.asarray(checker.score(claims, evidence))
    seconds = time.perf_counter() - started
    return {
        "claims": len(claims),
        "positives": int(labels.sum()),
        "roc_auc": round(roc_auc(labels, scores), 4),
        "ms_per_claim": round(1000 * seconds / max(len(claims), 1), 2),
    }


def fit_checker(checker: EvidenceSupportChecker, examples: Examples) -> dict[str, Any]:
    """Fit the offline checker's weights on development examples; returns them with per-feature AUCs and
    the 5-fold cross-validated AUC of the same fit."""
    claims, evidence, labels = examples
    features = checker.features(claims, evidence)
    weights, bias = fit_logistic(features, labels)
    return {
        "weights": weights,
        "bias": bias,
        "features": list(FEATURE_NAMES),
        "feature_auc": {n: round(roc_auc(labels, features[:, i]), 4) for i, n in enumerate(FEATURE_NAMES)},
        "cv5_roc_auc": round(cross_validated_auc(features, labels), 4),
    }


def support_report(
    checker: SupportChecker,
    wice: Path,
    scifact: Path,
    halueval: Path | None = None,
    *,
    fit: bool = False,
    reserved: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """The checker's ROC AUC and cost on WiCE dev, SciFact claims_train and HaluEval QA records 0-999
    (with `reserved`, also WiCE test, SciFact claims_dev and HaluEval records 8,000-8,999); with `fit`,
    the offline checker is first fitted on WiCE dev."""
    report: dict[str, Any] = {"checker": checker.name}
    if fit:
        if not isinstance(checker, EvidenceSupportChecker):
            raise InvalidInputError("fitting needs the offline evidence checker: unset support_model")
        fitted = fit_checker(checker, load_wice(wice, "dev"))
        checker = EvidenceSupportChecker(checker.embedder, fitted["weights"], fitted["bias"])
        report["fit"] = {**fitted, "on": "WiCE dev"}
    sets: dict[str, Callable[[], Examples]] = {
        "wice_dev": lambda: load_wice(wice, "dev"),
        "scifact_claims_train": lambda: load_scifact(scifact, "train"),
    }
    if halueval is not None:
        sets["halueval_qa_dev"] = lambda: load_halueval(halueval, 1000)
    if reserved:
        sets |= {
            "wice_test": lambda: load_wice(wice, "test"),
            "scifact_claims_dev": lambda: load_scifact(scifact, "dev"),
        }
        if halueval is not None:
            sets["halueval_qa_reserved"] = lambda: load_halueval(halueval, 1000, first=8000)
    for name, load in sets.items():
        report[name] = evaluate(checker, load())
        progress(f"{name}: {report[name]}")
    return report
