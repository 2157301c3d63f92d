"""Reading one answer's confidence in the answering path: the judge's logits from the answer's own
conversation, the extractive mode's best sentence, the signals, the calibrator's probability; and the
one extractive retry when the model refused though the signals say a passage answers (a false refusal)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rag.embeddings import Embedder
from rag.extractive import extract_answer
from rag.generation import ContinuationScorer, Generator
from rag.signals.calibrator import Calibrator
from rag.signals.features import AnswerEvidence, answer_signals, judge_logit
from rag.types import AnswerSentence, Passage

DEFAULT_RECOVERY = {"judge_logit": 0.0, "coverage": 0.75}
"""When the calibrator file names no recovery rule: retry extractively after a refusal when the judge leans
Yes (logit difference above 0) and the extractive sentence holds 75 % of the question's content words."""


@dataclass
class Confidence:
    """The signals of one answer, the calibrated probability that it is right (None without a
    calibrator) and the extractive sentence read on the way (reused by the false-refusal retry)."""

    signals: dict[str, float]
    probability: float | None
    extractive: str
    hidden_state: list[float] | None = None


class ConfidenceReader:
    """Reads signals and confidence for answers; the model is shared with answering under its lock."""

    def __init__(
        self,
        generator: Callable[[], Generator],
        embedder: Callable[[], Embedder],
        calibrator: Calibrator | None,
        lock: threading.Lock,
    ) -> None:
        self.generator = generator
        self.embedder = embedder
        self.calibrator = calibrator
        self.lock = lock

    def read(
        self,
        question: str,
        passages: Sequence[Passage],
        messages: list[dict[str, str]] | None,
        text: str,
        *,
        sentences: Sequence[AnswerSentence] = (),
        refusal: float | None = None,
        token_logprobs: Sequence[float] = (),
        refused: bool = False,
        judge: float | None = None,
        extractive: str | None = None,
        hidden: list[float] | None = None,
        timings: dict[str, float] | None = None,
    ) -> Confidence:
        """Signals and confidence of `text`, the answer to `messages` (None: no judge is asked; `judge`
        gives one read before). `extractive` is the extractive sentence when already known; `hidden` the
        model's hidden state at the end of the prompt, read by the calibrator's probe."""
        started = time.perf_counter()
        generator = self.generator() if messages is not None else None
        if isinstance(generator, ContinuationScorer) and messages is not None:
            with self.lock:
                judge = judge_logit(generator, messages, text)
        judged = time.perf_counter()
        if extractive is None:
            extractive = extract_answer(question, list(passages), self.embedder()) if passages else ""
        signals = answer_signals(
            AnswerEvidence(
                question,
                passages,
                text,
                sentences,
                refusal,
                token_logprobs,
                judge,
                extractive,
                refused,
                extra={"hidden_probe": self._probe(hidden)},
            )
        )
        probability = self.calibrator.probability(signals) if self.calibrator is not None else None
        if timings is not None:
            timings["judge_seconds"] = judged - started
            timings["confidence_seconds"] = time.perf_counter() - started
        return Confidence(signals, probability, extractive, hidden)

    def _probe(self, hidden: list[float] | None) -> float:
        """The hidden-state probe's log-odds that the passages answer (NaN without a state or a probe)."""
        probe = self.calibrator.probe if self.calibrator is not None else None
        return probe.log_odds(hidden) if probe is not None and hidden else math.nan

    def recovery_rule(self) -> dict[str, float]:
        stored: dict[str, Any] = (self.calibrator.metadata.get("recovery") or {}) if self.calibrator else {}
        return {**DEFAULT_RECOVERY, **{k: float(v) for k, v in stored.items() if k in DEFAULT_RECOVERY}}

    def recovers(self, question: str, confidence: Confidence) -> bool:
        """After a refusal: whether the judge and the extractive sentence say a passage answers after all."""
        rule = self.recovery_rule()
        if not confidence.extractive:
            return False
        coverage = confidence.signals["extractive_coverage"]
        return confidence.signals["judge_logit"] > rule["judge_logit"] and coverage >= rule["coverage"]
