"""The offline support checker: lexical coverage of the claim by the evidence (content words, numbers,
names), the embedder's best sentence similarity and how well each claim token aligns with an evidence
token (a missing piece shows as unaligned tokens), combined by a logistic model fitted on WiCE dev
(`rag eval support --fit`)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from rag.embeddings import Embedder, TokenEmbedder, Tokens
from rag.support.base import overlapping_sentences
from rag.text import STOP_WORDS, content_terms, split_sentences

_NEGATIONS = frozenset(["not", "no", "never", "none", "nor", "cannot", "without", "n't"])


def evidence_features(
    claim: str, evidence_text: str, similarity: float, alignment: tuple[float, float] | None = None
) -> list[float]:
    """Features of one claim against its joined evidence: coverage of words, numbers and names,
    a negation mismatch, the best sentence similarity and the claim's token alignment (`alignment`:
    token recall and unaligned share; without token vectors, their lexical counterparts)."""
    claim_terms = content_terms(claim)
    evidence_terms = set(content_terms(evidence_text))
    if not claim_terms:
        return [1.0, 1.0, 1.0, 0.0, similarity, 0.0, 1.0, 0.0]
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
    token_recall, token_unaligned = alignment if alignment is not None else (word_cover, 1.0 - word_cover)
    return [
        word_cover,
        number_cover,
        name_cover,
        float(claim_negated and not evidence_negated),
        similarity,
        math.log1p(missing),
        token_recall,
        token_unaligned,
    ]


FEATURE_NAMES = (
    "word_cover",
    "number_cover",
    "name_cover",
    "negation_mismatch",
    "similarity",
    "log_missing",
    "token_recall",
    "token_unaligned",
)

# Fitted on WiCE dev claims (supported vs the rest) by `rag eval support --fit`; see evals/calibration.json.
DEFAULT_WEIGHTS = (0.5253, 1.7534, 0.9077, -0.0272, 0.6995, -0.5294, 1.1156, -2.0912)
DEFAULT_BIAS = -2.8583

TOKEN_MATCH = 0.8
"""Cosine at which an evidence token vector counts as stating a claim token (MiniLM token space)."""
TOKEN_SENTENCES = 2
"""Evidence sentences most similar to the claim that `token_unaligned` reads: support should be local."""


class EvidenceSupportChecker:
    """Offline support from lexical coverage and, with an embedder, sentence similarity and token alignment
    (each claim token's best cosine to an evidence token, BERTScore-style recall: catches a missing piece)."""

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
        embedded = self._embedding_features(claims, evidence)
        return np.asarray(
            [
                evidence_features(claim, " ".join(texts), similarity, alignment)
                for claim, texts, (similarity, alignment) in zip(claims, evidence, embedded, strict=True)
            ],
            dtype=np.float64,
        )

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        if not claims:
            return []
        logits = self.features(claims, evidence) @ self.weights + self.bias
        scores = 1.0 / (1.0 + np.exp(-logits))
        return [float(s) if texts else 0.0 for s, texts in zip(scores, evidence, strict=True)]

    def _embedding_features(
        self, claims: Sequence[str], evidence: Sequence[Sequence[str]]
    ) -> list[tuple[float, tuple[float, float] | None]]:
        """Per claim: the best cosine to any evidence sentence (0 without an embedder) and, when the
        embedder exposes token vectors, the claim's token alignment to those sentences."""
        if self.embedder is None:
            return [(0.0, None)] * len(claims)
        sentences = [
            overlapping_sentences(claim, [s for t in texts for s in split_sentences(t)])
            for claim, texts in zip(claims, evidence, strict=True)
        ]
        flat = [s for group in sentences for s in group]
        if isinstance(self.embedder, TokenEmbedder):
            vectors, tokens = self.embedder.token_embeddings(list(claims) + flat)
        else:
            vectors, tokens = self.embedder.embed(list(claims) + flat, batch_size=32), None
        claim_vectors, sentence_vectors = vectors[: len(claims)], vectors[len(claims) :]
        results: list[tuple[float, tuple[float, float] | None]] = []
        start = 0
        for i, group in enumerate(sentences):
            end = start + len(group)
            similarities = sentence_vectors[start:end] @ claim_vectors[i]
            alignment = None
            if tokens is not None:
                group_tokens = tokens[len(claims) + start : len(claims) + end]
                alignment = token_alignment(tokens[i], [group_tokens[j] for j in np.argsort(-similarities)])
            results.append((float(similarities.max()) if len(group) else 0.0, alignment))
            start = end
        return results


def token_alignment(claim: Tokens, sentences: list[Tokens]) -> tuple[float, float]:
    """How well the claim's content tokens are stated by the evidence sentences (most similar first):
    their mean best cosine to any sentence's tokens, and the share with no match in the top sentences."""
    pieces, vectors = claim
    content = [i for i, p in enumerate(pieces) if _is_content_piece(p)] or list(range(len(pieces)))
    if not content:
        return 1.0, 0.0
    if not sentences:
        return 0.0, 1.0
    claim_vectors = vectors[content]
    best_each = [
        (claim_vectors @ v.T).max(axis=1) if len(v) else np.zeros(len(content)) for _, v in sentences
    ]
    recall = float(np.max(best_each, axis=0).mean())
    unaligned = float((np.max(best_each[:TOKEN_SENTENCES], axis=0) < TOKEN_MATCH).mean())
    return recall, unaligned


def _is_content_piece(piece: str) -> bool:
    """A word piece that carries meaning: a word continuation, or a whole word that is not a stopword."""
    word = piece.removeprefix("##")
    return word.isalnum() and (piece.startswith("##") or word not in STOP_WORDS)
