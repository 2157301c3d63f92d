"""Test doubles of the project's protocols: small, deterministic, and held to the same contracts
(tests/contracts.py) as the real implementations, so a test that passes with a fake means the same
thing with the real component."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from rag.chunking import WordCounter
from rag.embeddings import Embedder
from rag.generation import GenerationStats, GenerationStream
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


class SentenceVectorsOnly:
    """An embedder without token vectors (no `token_embeddings`): the evidence checker falls back to
    lexical token features."""

    def __init__(self, embedder: Embedder) -> None:
        self.embed = embedder.embed


class KeywordChecker:
    """A support checker: support 1 when every word of the claim appears in the evidence, else 0."""

    name = "keyword"

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        return [
            float(
                bool(texts) and all(w in " ".join(texts).lower() for w in claim.lower().rstrip(".").split())
            )
            for claim, texts in zip(claims, evidence, strict=True)
        ]


class ScriptedGenerator:
    """Answers with the next scripted reply, in word pieces (one token per word, at most `max_tokens`),
    keeps the messages it was sent, and notes (`stopped`) a reply closed before its end."""

    name = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []
        self.stopped = False

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        self.calls.append(messages)
        words = self.replies.pop(0).split(" ")[:max_tokens]
        stats = GenerationStats(prompt_tokens=sum(self.count_tokens(m["content"]) for m in messages))

        def pieces() -> Iterator[str]:
            try:
                for n, word in enumerate(words):
                    stats.completion_tokens = n + 1
                    yield word if n == 0 else " " + word
            except GeneratorExit:
                self.stopped = True
                raise

        return GenerationStream(pieces(), stats)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class HesitantGenerator(ScriptedGenerator):
    """A scripted generator that also reports a fixed probability of starting with any continuation
    (the refusal, when the answerer asks)."""

    def __init__(self, refusal_probability: float, *replies: str) -> None:
        super().__init__(*replies)
        self.refusal_probability = refusal_probability
        self.scored: list[str] = []

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        self.scored.append(continuation)
        return float(np.log(self.refusal_probability))


class GatedGenerator:
    """Writes "<MARK>-0 <MARK>-1 ..." for the MARK word in the question, once `gate` is open."""

    name = "gated-test-double"

    def __init__(self, tokens: int = 5) -> None:
        self.gate = threading.Event()
        self.tokens = tokens
        self.started = 0
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        mark = re.findall(r"MARK\w+", " ".join(m["content"] for m in messages))[-1]

        def pieces() -> Iterator[str]:
            with self._lock:
                self.started += 1
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            try:
                self.gate.wait(30)
                for i in range(self.tokens):
                    time.sleep(0.01)
                    yield f"{mark}-{i} "
            finally:
                with self._lock:
                    self.running -= 1

        return GenerationStream(pieces())

    def count_tokens(self, text: str) -> int:
        return len(text.split())
