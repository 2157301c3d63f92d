"""The one grounding policy: when to abstain, which sentences count as supported, what strict mode keeps.

The answering path and the answer benchmark both decide through this object, so a benchmark can
never score a rule the product does not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from rag.config import GroundingMode, Settings


class CheckedSentence(Protocol):
    """What the policy reads of a sentence: its valid and invalid citations and its support score."""

    @property
    def citations(self) -> Sequence[object]: ...

    @property
    def invalid_citations(self) -> Sequence[object]: ...

    @property
    def support(self) -> float | None: ...


SentenceT = TypeVar("SentenceT", bound=CheckedSentence)


@dataclass(frozen=True)
class GroundingPolicy:
    """Thresholds and mode of one answer: evidence gate, refusal probability, support, strict removal, and
    the confidence target."""

    mode: GroundingMode = "flag"
    min_relevance: float = 0.0
    refusal_threshold: float = 1.0
    support_threshold: float = 0.5
    min_confidence: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, mode: GroundingMode | None = None) -> GroundingPolicy:
        return cls(
            mode=mode or settings.grounding_mode,
            min_relevance=settings.min_relevance,
            refusal_threshold=settings.refusal_threshold,
            support_threshold=settings.support_threshold,
            min_confidence=settings.min_confidence,
        )

    @property
    def checks_support(self) -> bool:
        """Whether sentences are checked against their passages at all (mode `off` skips it)."""
        return self.mode != "off"

    def gate_abstains(self, evidence: float | None) -> bool:
        """Abstain before generating: no passage, or the best one is less relevant than `min_relevance`."""
        return evidence is None or evidence < self.min_relevance

    def refusal_abstains(self, refusal_probability: float | None) -> bool:
        """Abstain before generating: the model itself is likely to say the documents do not answer."""
        return refusal_probability is not None and refusal_probability >= self.refusal_threshold

    def confidence_abstains(self, confidence: float | None) -> bool:
        """Abstain after answering: the calibrated probability that the answer is right is below the
        target `min_confidence` (0: off; an answer without a confidence is never withheld)."""
        return confidence is not None and confidence < self.min_confidence

    def is_supported(self, sentence: CheckedSentence) -> bool:
        """A sentence is supported when it cites only given passages and they support it enough."""
        return (
            bool(sentence.citations)
            and not sentence.invalid_citations
            and (sentence.support or 0.0) >= self.support_threshold
        )

    def kept(self, sentences: Sequence[SentenceT]) -> list[SentenceT] | None:
        """The sentences the answer shows: all of them, or in strict mode the supported ones;
        None when strict mode removes every sentence (the answer abstains)."""
        if self.mode != "strict":
            return list(sentences)
        supported = [s for s in sentences if self.is_supported(s)]
        return supported or None
