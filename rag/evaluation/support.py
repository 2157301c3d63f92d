"""Support-checker benchmark: ROC AUC on WiCE (supported vs the rest) and SciFact claims (SUPPORT vs
the rest), cost per claim, and fitting the offline checker's logistic weights on development data."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.support import FEATURE_NAMES, EvidenceSupportChecker, SupportChecker

Examples = tuple[list[str], list[list[str]], np.ndarray]


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


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance a positive outscores a negative."""
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def fit_logistic(
    features: np.ndarray, labels: np.ndarray, l2: float = 1.0, steps: int = 50
) -> tuple[list[float], float]:
    """Weights and bias of an L2-regularized logistic regression (Newton's method, bias unpenalized)."""
    x = np.hstack([features, np.ones((len(features), 1))])
    y = labels.astype(np.float64)
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        w -= np.linalg.solve(hessian, gradient)
    return [round(float(v), 4) for v in w[:-1]], round(float(w[-1]), 4)


def cross_validated_auc(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """ROC AUC of logistic fits scored on held-out stratified folds: what a fit is worth on unseen claims."""
    labels = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=int)
    for members in (np.flatnonzero(labels), np.flatnonzero(~labels)):
        fold[rng.permutation(members)] = np.arange(len(members)) % folds
    scores = np.empty(len(labels))
    for k in range(folds):
        weights, bias = fit_logistic(features[fold != k], labels[fold != k])
        scores[fold == k] = features[fold == k] @ np.asarray(weights) + bias
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
