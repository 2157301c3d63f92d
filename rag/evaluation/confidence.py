"""Scoring the confidence of answers: labels, ROC AUC, the coverage-risk curve and an operating point.

A question is answered right when it is answerable, the answer was given (not a refusal) and it matches a
gold answer (token F1 or containment at least `RIGHT_F1`). Every question counts: one the model refused
has confidence 0 (it is never shown), so the AUROC and the curve are those of the whole system.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rag.evaluation.records import AnswerRecord, QuestionRecord
from rag.evaluation.scoring import normalize_answer, token_f1
from rag.signals.calibrator import Calibrator
from rag.text import strip_citations

RIGHT_F1 = 0.5
"""Token F1 (or containment of a gold answer) from which an answer counts as right."""


def answer_of(record: QuestionRecord) -> AnswerRecord:
    if record.generative is None:
        raise ValueError(f"record {record.id} has no generative answer: run with the generative mode")
    return record.generative


def answer_score(record: QuestionRecord) -> float:
    """max(token F1, 1 if a gold answer is contained in the answer) for an answered answerable question."""
    answer = answer_of(record)
    if not record.answerable or answer.abstained:
        return 0.0
    text = strip_citations(answer.text)
    contained = any(
        normalize_answer(g) and normalize_answer(g) in normalize_answer(text) for g in record.answers
    )
    return max(token_f1(text, record.answers), float(contained))


def is_right(record: QuestionRecord) -> int:
    return int(answer_score(record) >= RIGHT_F1)


def stored_signals(answer: AnswerRecord, calibrator: Calibrator) -> dict[str, float]:
    """An answer's stored signals, with the calibrator's own hidden-state probe read from the stored state
    (the probe stored with the signals may be another one, or none)."""
    signals = dict(answer.signals or {})
    if calibrator.probe is not None and answer.hidden_state:
        signals["hidden_probe"] = calibrator.probe.log_odds(answer.hidden_state)
    return signals


def confidences(records: Sequence[QuestionRecord], calibrator: Calibrator | None) -> list[float]:
    """Each record's confidence: the calibrator applied to its stored signals (as recorded without one);
    0 for a refusal and for a record without signals."""
    values = []
    for record in records:
        answer = answer_of(record)
        if answer.abstained or answer.signals is None:
            values.append(0.0)
        elif calibrator is not None:
            values.append(calibrator.probability(stored_signals(answer, calibrator)))
        else:
            values.append(answer.confidence if answer.confidence is not None else 0.0)
    return values


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """scikit-learn's ROC AUC; None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(list(labels), [0.0 if math.isnan(s) else s for s in scores]))


def coverage_risk(records: Sequence[QuestionRecord], scores: Sequence[float]) -> list[dict[str, float]]:
    """The coverage-risk curve: for each threshold (every distinct confidence), the share of questions
    answered (coverage), the share of answered ones not right (risk), answered answerable, abstained
    unanswerable, and the mean F1 of the answered answerable."""
    points = []
    refused = [answer_of(r).abstained for r in records]
    for threshold in sorted({round(s, 4) for s in scores}):
        shown = [s >= threshold and not a for s, a in zip(scores, refused, strict=True)]
        points.append(operating_point(records, shown, threshold))
    return points


def operating_point(
    records: Sequence[QuestionRecord], shown: Sequence[bool], threshold: float
) -> dict[str, float]:
    """What the system does when it shows exactly the answers in `shown`."""
    answered = [r for r, s in zip(records, shown, strict=True) if s]
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    answered_answerable = [r for r in answered if r.answerable]
    shown_ids = {r.id for r in answered}
    return {
        "threshold": threshold,
        "coverage": len(answered) / max(len(records), 1),
        "risk": sum(1 - is_right(r) for r in answered) / len(answered) if answered else 0.0,
        "answered_answerable": 100.0 * len(answered_answerable) / max(len(answerable), 1),
        "abstained_unanswerable": 100.0
        * sum(r.id not in shown_ids for r in unanswerable)
        / max(len(unanswerable), 1),
        "f1_answered": (
            100.0
            * sum(token_f1(strip_citations(answer_of(r).text), r.answers) for r in answered_answerable)
            / len(answered_answerable)
            if answered_answerable
            else 0.0
        ),
    }


def at_threshold(
    records: Sequence[QuestionRecord], scores: Sequence[float], threshold: float
) -> dict[str, float]:
    shown = [s >= threshold and not answer_of(r).abstained for r, s in zip(records, scores, strict=True)]
    return operating_point(records, shown, threshold)


def area_under_risk(points: Sequence[dict[str, float]]) -> float:
    """Area under the coverage-risk curve (lower is better), by the trapezoid rule over coverage."""
    ordered = sorted((p["coverage"], p["risk"]) for p in points)
    return sum((c2 - c1) * (r1 + r2) / 2 for (c1, r1), (c2, r2) in zip(ordered, ordered[1:]))


def confidence_report(
    records: Sequence[QuestionRecord], calibrator: Calibrator | None, min_confidence: float
) -> dict[str, Any]:
    """AUROC of the confidence, the coverage-risk curve, and the operating point of `min_confidence`
    (and, for comparison, with no confidence threshold at all)."""
    records = [r for r in records if r.generative is not None]
    scores = confidences(records, calibrator)
    labels = [is_right(r) for r in records]
    curve = coverage_risk(records, scores)
    recovered = [r for r in records if answer_of(r).recovered]
    return {
        "questions": len(records),
        "right": sum(labels),
        "auroc": roc_auc(labels, scores),
        "area_under_risk": area_under_risk(curve),
        "min_confidence": min_confidence,
        "operating_point": at_threshold(records, scores, min_confidence),
        "no_threshold": at_threshold(records, scores, -1.0),
        "without_recovery": operating_point(
            records,
            [
                s >= min_confidence and not answer_of(r).abstained and not answer_of(r).recovered
                for r, s in zip(records, scores, strict=True)
            ],
            min_confidence,
        ),
        "recovered": len(recovered),
        "recovered_right": sum(is_right(r) for r in recovered),
        "recovered_unanswerable": sum(not r.answerable for r in recovered),
        "curve": curve,
    }
