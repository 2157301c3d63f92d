"""Evidence compression: the passages given to the model cut to the sentences that matter for the question.

RECOMP-style extractive selection. Every sentence of the retrieved passages is scored by the cosine
similarity of its vector to the question's (the embedder is already loaded) plus a BM25-style overlap of
content terms, normalized to 0..1. Each passage keeps its best sentence, so every source the model is
shown still holds evidence; then the remaining sentences are taken best first while the kept text fits
the token budget. A passage keeps one contiguous span (from its first to its last kept sentence, the
sentences between included), widened by neighbouring sentences while the budget allows: the model reads
whole stretches of text, not scattered sentences.

The compressed passage's chunk is a narrower span of the same document (`start`/`end` moved,
`text == document.text[start:end]`), so citations still quote an exact span of the original.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.embeddings import Embedder
from rag.text import content_terms, sentence_spans
from rag.types import Passage

LEXICAL_WEIGHT = 0.3
"""Weight of the normalized term overlap next to the cosine similarity (about -0.1..0.9 for MiniLM)."""
_K1, _B = 1.2, 0.75


@dataclass
class _Sentence:
    passage: int
    index: int
    start: int
    end: int
    tokens: int
    score: float = 0.0


def compress_passages(
    question: str, passages: Sequence[Passage], embedder: Embedder, budget_tokens: int
) -> list[Passage]:
    """The passages cut to the question's sentences, at most `budget_tokens` embedder tokens in all (and
    never less than each passage's best sentence); the passages unchanged when they already fit or the
    budget is 0."""
    passages = list(passages)
    sentences = [
        _Sentence(n, i, start, end, 0)
        for n, passage in enumerate(passages)
        for i, (start, end) in enumerate(sentence_spans(passage.chunk.text))
    ]
    if budget_tokens <= 0 or not sentences:
        return passages
    texts = [passages[s.passage].chunk.text[s.start : s.end] for s in sentences]
    for sentence, tokens in zip(sentences, embedder.count(texts), strict=True):
        sentence.tokens = max(tokens, 1)
    if sum(s.tokens for s in sentences) <= budget_tokens:
        return passages
    for sentence, score in zip(sentences, sentence_scores(question, texts, embedder), strict=True):
        sentence.score = float(score)
    by_passage: list[list[_Sentence]] = [[] for _ in passages]
    for sentence in sentences:
        by_passage[sentence.passage].append(sentence)
    windows = select_windows(by_passage, budget_tokens)
    return [_narrowed(p, group, windows[n]) for n, (p, group) in enumerate(zip(passages, by_passage))]


def sentence_scores(question: str, sentences: Sequence[str], embedder: Embedder) -> np.ndarray:
    """Cosine similarity of each sentence to the question plus `LEXICAL_WEIGHT` times its BM25 overlap
    with the question's content terms (normalized by the best sentence's)."""
    vectors = embedder.embed(list(sentences))
    dense = vectors @ embedder.embed_query(question)
    return dense + LEXICAL_WEIGHT * term_overlap(question, sentences)


def term_overlap(question: str, sentences: Sequence[str]) -> np.ndarray:
    """BM25 of the question's content terms in each sentence, the sentences as the collection; 0..1."""
    query = set(content_terms(question))
    terms = [Counter(content_terms(s)) for s in sentences]
    if not query or not terms:
        return np.zeros(len(sentences))
    lengths = [sum(t.values()) for t in terms]
    average = max(sum(lengths) / len(lengths), 1.0)
    frequency = Counter(term for t in terms for term in t if term in query)
    scores = np.zeros(len(sentences))
    for i, (counts, length) in enumerate(zip(terms, lengths, strict=True)):
        for term in query & counts.keys():
            idf = math.log(1 + (len(terms) - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = counts[term]
            scores[i] += idf * tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * length / average))
    best = scores.max()
    return scores / best if best > 0 else scores


def select_windows(by_passage: list[list[_Sentence]], budget_tokens: int) -> list[tuple[int, int]]:
    """For each passage, the first and last index of the sentences it keeps (inclusive)."""
    windows: list[tuple[int, int]] = []
    for group in by_passage:
        best = max(group, key=lambda s: s.score).index if group else 0
        windows.append((best, best))
    used = sum(_cost(group, w) for group, w in zip(by_passage, windows, strict=True))

    def grow(n: int, low: int, high: int) -> bool:
        nonlocal used
        extra = _cost(by_passage[n], (low, high)) - _cost(by_passage[n], windows[n])
        if used + extra > budget_tokens:
            return False
        windows[n], used = (low, high), used + extra
        return True

    ranked = sorted((s for group in by_passage for s in group), key=lambda s: -s.score)
    for sentence in ranked:
        low, high = windows[sentence.passage]
        grow(sentence.passage, min(low, sentence.index), max(high, sentence.index))
    # Neighbours for context, the sentence before first (it often holds what "it" or "this" refers to).
    for n, group in enumerate(by_passage):
        low, high = windows[n]
        if low > 0:
            grow(n, low - 1, high)
        low, high = windows[n]
        if high < len(group) - 1:
            grow(n, low, high + 1)
    return windows


def _cost(group: list[_Sentence], window: tuple[int, int]) -> int:
    if not group:
        return 0
    return sum(s.tokens for s in group[window[0] : window[1] + 1])


def _narrowed(passage: Passage, group: list[_Sentence], window: tuple[int, int]) -> Passage:
    """The passage with its chunk cut to the window's sentences (document offsets moved with it)."""
    if not group or (window[0] == 0 and window[1] == len(group) - 1):
        return passage
    chunk = passage.chunk
    start, end = group[window[0]].start, group[window[1]].end
    narrowed = replace(chunk, text=chunk.text[start:end], start=chunk.start + start, end=chunk.start + end)
    return replace(passage, chunk=narrowed)
