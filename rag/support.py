"""Support checks: how well the passages a sentence cites support it, as a score in 0..1.

The offline default (`EvidenceSupportChecker`) reads what is here: lexical coverage of the claim by
the evidence (content words, numbers, names), the packaged embedder's best sentence similarity and
how well each claim token aligns with an evidence token (a missing piece shows as unaligned tokens),
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

from rag.embeddings import Embedder, SentenceTransformerEmbedder
from rag.errors import ModelUnavailableError
from rag.generation.base import ContinuationScorer


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
            _overlapping(claim, [s for t in texts for s in _SENTENCE.split(t) if s.strip()])
            for claim, texts in zip(claims, evidence, strict=True)
        ]
        flat = [s for group in sentences for s in group]
        if isinstance(self.embedder, SentenceTransformerEmbedder):
            vectors, tokens = _encode_with_tokens(self.embedder, list(claims) + flat)
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


Tokens = tuple[list[str], np.ndarray]
"""A text's word pieces (special tokens dropped) and their L2-normalized vectors."""


def _encode_with_tokens(
    embedder: SentenceTransformerEmbedder, texts: list[str]
) -> tuple[np.ndarray, list[Tokens]]:
    """Sentence vectors and token vectors of `texts` from one pass of the sentence-transformers model."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32), []
    outputs = embedder.model.encode(texts, batch_size=32, output_value=None, convert_to_numpy=False)
    vectors = np.stack([o["sentence_embedding"].float().numpy() for o in outputs])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    tokens = []
    for o in outputs:
        length = int(o["attention_mask"].sum())
        pieces = embedder.tokenizer.convert_ids_to_tokens(o["input_ids"][1 : length - 1].tolist())
        token_vectors = o["token_embeddings"][1 : length - 1].float().numpy()
        token_vectors /= np.maximum(np.linalg.norm(token_vectors, axis=1, keepdims=True), 1e-12)
        tokens.append((pieces, token_vectors))
    return vectors, tokens


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
    return word.isalnum() and (piece.startswith("##") or word not in _STOPWORDS)


SIMILARITY_CANDIDATES = 16
"""Evidence sentences (those sharing most content words with the claim) embedded per claim."""


def _overlapping(claim: str, sentences: list[str], limit: int = SIMILARITY_CANDIDATES) -> list[str]:
    """The `limit` evidence sentences sharing most content words with the claim, in their order: long
    articles embed (or are read by a judge) cheaply."""
    if len(sentences) <= limit:
        return sentences
    terms = set(content_terms(claim))
    overlap = [len(terms.intersection(content_terms(s))) for s in sentences]
    best = sorted(range(len(sentences)), key=lambda i: -overlap[i])[:limit]
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
        sentences = [s.strip() for t in texts for s in _SENTENCE.split(" ".join(t.split())) if s.strip()]
        sentences = _overlapping(claim, sentences, JUDGE_EVIDENCE_SENTENCES)
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
