"""The SupportChecker protocol, and what every checker that reads evidence sentences shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rag.text import content_terms


@runtime_checkable
class SupportChecker(Protocol):
    """Scores claims against evidence: 1 = the evidence states the claim, 0 = it does not."""

    name: str

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        """For each claim, the support (0..1) its evidence texts give it together; no evidence scores 0."""
        ...


SIMILARITY_CANDIDATES = 16
"""Evidence sentences (those sharing most content words with the claim) embedded per claim."""


def overlapping_sentences(claim: str, sentences: list[str], limit: int = SIMILARITY_CANDIDATES) -> list[str]:
    """The `limit` evidence sentences sharing most content words with the claim, in their order: long
    articles embed (or are read by a judge) cheaply."""
    if len(sentences) <= limit:
        return sentences
    terms = set(content_terms(claim))
    overlap = [len(terms.intersection(content_terms(s))) for s in sentences]
    best = sorted(range(len(sentences)), key=lambda i: -overlap[i])[:limit]
    return [sentences[i] for i in sorted(best)]
