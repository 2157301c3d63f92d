"""Support checks: how well the passages a sentence cites support it, as a score in 0..1.

The offline default (`EvidenceSupportChecker`) reads what is here: lexical coverage of the claim by
the evidence (content words, numbers, names) and the packaged embedder's best sentence similarity,
combined by a logistic model fitted on WiCE dev (`rag eval support --fit`). Users with a Hugging
Face NLI cross-encoder can set `support_model` to use its entailment probability instead.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rag.embeddings import Embedder
from rag.errors import ModelUnavailableError


@runtime_checkable
class SupportChecker(Protocol):
    """Scores claims against evidence: 1 = the evidence states the claim, 0 = it does not."""

    name: str

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        """For each claim, the support (0..1) its evidence texts give it together; no evidence scores 0."""
        ...


_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,][0-9]+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "would",
        "could",
        "also",
        "as",
        "while",
        "because",
        "until",
        "one",
    ]
)
_NEGATIONS = frozenset(["not", "no", "never", "none", "nor", "cannot", "without", "n't"])


@functools.lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202
    import Stemmer

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-cased content words and numbers of `text` (stopwords dropped)."""
    words = [w.lower() for w in _WORD.findall(text)]
    words = [w for w in words if w not in _STOPWORDS]
    return [w if w[0].isdigit() else s for w, s in zip(words, _stemmer().stemWords(words), strict=True)]


def evidence_features(claim: str, evidence_text: str, similarity: float) -> list[float]:
    """Features of one claim against its joined evidence: coverage of words, numbers and names,
    a negation mismatch, and the best sentence similarity."""
    claim_terms = content_terms(claim)
    evidence_terms = set(content_terms(evidence_text))
    if not claim_terms:
        return [1.0, 1.0, 1.0, 0.0, similarity, 0.0]
    covered = [t in evidence_terms for t in claim_terms]
    numbers = [t for t in claim_terms if t[0].isdigit()]
    names = {w.lower() for w in re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+", claim)}
    name_terms = [t for t in content_terms(" ".join(names))]
    word_cover = sum(covered) / len(covered)
    number_cover = sum(t in evidence_terms for t in numbers) / len(numbers) if numbers else 1.0
    name_cover = sum(t in evidence_terms for t in name_terms) / len(name_terms) if name_terms else 1.0
    claim_negated = bool(_NEGATIONS.intersection(w.lower() for w in re.findall(r"[\w']+", claim)))
    evidence_negated = bool(_NEGATIONS.intersection(w.lower() for w in re.findall(r"[\w']+", evidence_text)))
    missing = len(covered) - sum(covered)
    return [
        word_cover,
        number_cover,
        name_cover,
        float(claim_negated and not evidence_negated),
        similarity,
        math.log1p(missing),
    ]


FEATURE_NAMES = ("word_cover", "number_cover", "name_cover", "negation_mismatch", "similarity", "log_missing")

# Fitted on WiCE dev claims (supported vs the rest) by `rag eval support --fit`; see evals/calibration.json.
DEFAULT_WEIGHTS = (0.8463, 1.6989, 1.0082, -0.0386, 1.5896, -0.8634)
DEFAULT_BIAS = -3.6008


class EvidenceSupportChecker:
    """Offline support from lexical coverage and, with an embedder, sentence-level similarity."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        bias: float = DEFAULT_BIAS,
    ) -> None:
        self.embedder = embedder
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.name = "evidence" if embedder is not None else "lexical"

    def features(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> np.ndarray:
        similarities = self._similarities(claims, evidence)
        return np.asarray(
            [
                evidence_features(claim, " ".join(texts), sim)
                for claim, texts, sim in zip(claims, evidence, similarities, strict=True)
            ],
            dtype=np.float64,
        )

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        if not claims:
            return []
        logits = self.features(claims, evidence) @ self.weights + self.bias
        scores = 1.0 / (1.0 + np.exp(-logits))
        return [float(s) if texts else 0.0 for s, texts in zip(scores, evidence, strict=True)]

    def _similarities(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        """Best cosine between each claim and any sentence of its evidence (0 without an embedder)."""
        if self.embedder is None:
            return [0.0] * len(claims)
        sentences = [
            _overlapping(claim, [s for t in texts for s in _SENTENCE.split(t) if s.strip()])
            for claim, texts in zip(claims, evidence, strict=True)
        ]
        flat = [s for group in sentences for s in group]
        vectors = self.embedder.embed(list(claims) + flat, batch_size=32)
        claim_vectors, sentence_vectors = vectors[: len(claims)], vectors[len(claims) :]
        best, offset = [], 0
        for i, group in enumerate(sentences):
            block = sentence_vectors[offset : offset + len(group)]
            offset += len(group)
            best.append(float((block @ claim_vectors[i]).max()) if len(group) else 0.0)
        return best


SIMILARITY_CANDIDATES = 16
"""Evidence sentences (those sharing most content words with the claim) embedded per claim."""


def _overlapping(claim: str, sentences: list[str]) -> list[str]:
    """The evidence sentences sharing most content words with the claim: long articles embed cheaply."""
    if len(sentences) <= SIMILARITY_CANDIDATES:
        return sentences
    terms = set(content_terms(claim))
    overlap = [len(terms.intersection(content_terms(s))) for s in sentences]
    best = sorted(range(len(sentences)), key=lambda i: -overlap[i])[:SIMILARITY_CANDIDATES]
    return [sentences[i] for i in sorted(best)]


class CrossEncoderSupportChecker:
    """A Hugging Face NLI cross-encoder: support is its entailment probability for (evidence, claim)."""

    def __init__(self, model: str, *, allow_downloads: bool = False) -> None:
        try:
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(model, device="cpu", local_files_only=not allow_downloads)
        except Exception as exc:  # sentence-transformers raises many kinds for a missing model
            raise ModelUnavailableError(
                f"Cannot load the NLI model {model!r}: {exc}. Give a local folder or a downloaded Hugging "
                "Face id, or unset `support_model` for the offline checker."
            ) from exc
        labels = {v.lower(): int(k) for k, v in self.model.model.config.id2label.items()}
        entailment = [i for label, i in labels.items() if label.startswith("entail")]
        if not entailment:
            raise ModelUnavailableError(
                f"{model!r} has no 'entailment' label ({sorted(labels)}): not an NLI model."
            )
        self.entailment = entailment[0]
        self.name = f"nli:{model}"

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        pairs = [(" ".join(texts), claim) for claim, texts in zip(claims, evidence, strict=True)]
        if not pairs:
            return []
        probabilities = self.model.predict(pairs, apply_softmax=True, convert_to_numpy=True)
        return [
            float(p[self.entailment]) if texts else 0.0
            for p, texts in zip(probabilities, evidence, strict=True)
        ]
