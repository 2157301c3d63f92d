"""Confidence: the signals of one answer (`features`) and the calibrator that reads them (`calibrator`)."""

from rag.signals.calibrator import DEFAULT_CALIBRATOR, Calibrator, fit_calibrator
from rag.signals.features import FEATURES, AnswerEvidence, answer_signals, judge_logit

__all__ = [
    "DEFAULT_CALIBRATOR",
    "FEATURES",
    "AnswerEvidence",
    "Calibrator",
    "answer_signals",
    "fit_calibrator",
    "judge_logit",
]
