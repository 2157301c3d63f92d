"""Support judged by the generator itself, from its probabilities of replying Yes or No."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rag.generation.base import ContinuationScorer
from rag.support.base import overlapping_sentences
from rag.text import split_sentences

JUDGE_EVIDENCE_SENTENCES = 12
"""Evidence sentences (those sharing most content words with the claim) a judge reads per claim."""

JUDGE_SYSTEM = (
    "You check statements against evidence. A statement is supported only if the evidence states all of "
    "it; a statement that adds, changes or contradicts anything is not supported. Reply Yes or No."
)


class JudgeSupportChecker:
    """The generator as a judge: support is its probability of replying "Yes" rather than "No" when asked
    whether the evidence states the claim, read from its token probabilities (no text is generated).

    Slower than the evidence checker (one prompt prefill per claim) but it reads the evidence, so it can
    see a claim that shares the evidence's words yet says something else.
    """

    name = "judge"

    def __init__(self, generator: ContinuationScorer) -> None:
        self.generator = generator

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        return [
            self._score(claim, texts) if texts else 0.0 for claim, texts in zip(claims, evidence, strict=True)
        ]

    def _score(self, claim: str, texts: Sequence[str]) -> float:
        sentences = [s for t in texts for s in split_sentences(" ".join(t.split()))]
        sentences = overlapping_sentences(claim, sentences, JUDGE_EVIDENCE_SENTENCES)
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM},
            {
                "role": "user",
                "content": f"Evidence:\n{' '.join(sentences)}\n\nStatement: {claim.strip()}\n\n"
                "Does the evidence state everything the statement says? Reply Yes or No.",
            },
        ]
        yes = self.generator.continuation_logprob(messages, "Yes", 1)
        no = self.generator.continuation_logprob(messages, "No", 1)
        return float(1.0 / (1.0 + math.exp(no - yes)))
