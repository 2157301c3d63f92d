"""Test doubles of the project's protocols: small, deterministic, and held to the same contracts
(tests/contracts.py) as the real implementations, so a test that passes with a fake means the same
thing with the real component."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from rag.chunking import WordCounter
from rag.types import Passage

WORDS = ["volcano", "lava", "bread", "yeast", "bee", "honey", "flower", "ice"]


class BagOfWordsEmbedder(WordCounter):
    """A tiny deterministic embedder: one dimension per known word; one token per word."""

    name = "bag-of-words"
    dimension = len(WORDS)
    max_tokens = 256

    def embed_query(self, text: str) -> np.ndarray:
        vector = np.array([text.lower().count(w) for w in WORDS], dtype=np.float32) + 1e-3
        return vector / np.linalg.norm(vector)

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 16, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            if on_batch:
                on_batch(len(texts[start : start + batch_size]))
        return np.vstack([self.embed_query(t) for t in texts])


class ReverseReranker:
    """Puts the passages in reverse order, scoring them so that the new order is best first."""

    def rerank(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        return [replace(p, score=float(n)) for n, p in reversed(list(enumerate(passages)))]
