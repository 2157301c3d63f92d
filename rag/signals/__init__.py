"""Confidence: the signals of one answer (`features`) and the calibrator that reads them (`calibrator`)."""

from rag.signals.calibrator import DEFAULT_CALIBRATOR, Calibrator, HiddenProbe, fit_calibrator, fit_probe
from rag.signals.features import FEATURES, AnswerEvidence, answer_signals, judge_logit

__all__ = [
    "DEFAULT_CALIBRATOR",
    "FEATURES",
    "AnswerEvidence",
    "Calibrator",
    "answer_signals",
    "HiddenProbe",
    "fit_calibrator",
    "fit_probe",
    "judge_logit",
]
