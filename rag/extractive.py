"""Extractive answers, no language model: the passage sentences that best answer the question, cited."""

from __future__ import annotations

import numpy as np

from rag.embeddings import Embedder
from rag.text import content_terms, split_sentences
from rag.types import Passage

LEXICAL_WEIGHT = 0.5
"""Weight of the question-term overlap beside the embedding cosine when ranking sentences."""


def candidate_sentences(passages: list[Passage]) -> list[tuple[int, str]]:
    """Every sentence of the passages with its source number (1-based)."""
    found = []
    for n, passage in enumerate(passages, start=1):
        prose = " ".join(
            line for line in passage.chunk.text.splitlines() if not line.lstrip().startswith("#")
        )
        for sentence in split_sentences(" ".join(prose.split())):
            if len(sentence.split()) >= 3:
                found.append((n, sentence))
    return found


def extract_answer(question: str, passages: list[Passage], embedder: Embedder, *, sentences: int = 1) -> str:
    """The `sentences` best sentences for `question`, each followed by its `[n]`; empty without candidates."""
    candidates = candidate_sentences(passages)
    if not candidates:
        return ""
    query = embedder.embed_query(question)
    vectors = embedder.embed([text for _, text in candidates], batch_size=32)
    question_terms = set(content_terms(question))
    overlap = np.asarray(
        [len(question_terms.intersection(content_terms(text))) for _, text in candidates], dtype=np.float64
    ) / max(len(question_terms), 1)
    scores = vectors @ query + LEXICAL_WEIGHT * overlap
    best = sorted(np.argsort(-scores)[:sentences])
    return " ".join(_cite(*candidates[i]) for i in best)


def _cite(n: int, sentence: str) -> str:
    if sentence[-1:] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"
