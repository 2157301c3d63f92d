"""Retrieval: dense, lexical (BM25) and fused (reciprocal rank fusion), with filters, MMR and reranking.

`Retriever` is the one object that finds passages; its `mode` picks the ranking. Every passage it
returns carries the cosine similarity of its chunk to the question (`dense_score`), whatever the
mode, so the evidence gate means the same thing in every mode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from rag.embeddings import Embedder
from rag.errors import InvalidInputError, ModelUnavailableError
from rag.index import Index
from rag.types import Passage

if TYPE_CHECKING:
    from rag.config import Settings

RetrievalMode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[RetrievalMode, ...] = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class RetrievalFilter:
    """Restricts retrieval to some documents (by id), to documents named by id, source or file path
    (`documents`: a name that matches none is an InvalidInputError), and/or to sources under a prefix."""

    doc_ids: tuple[str, ...] | None = None
    path_prefix: str | None = None
    documents: tuple[str, ...] | None = None

    def allowed_chunk_ids(self, index: Index) -> np.ndarray:
        doc_ids = self.doc_ids
        if self.documents is not None:
            found = index.catalog.document_ids(self.documents)
            unknown = [name for name, ids in found.items() if not ids]
            if unknown:
                raise InvalidInputError(
                    f"No document {', '.join(map(repr, unknown))} in the index at {index.index_dir}: give "
                    "document ids or sources as listed by GET /api/documents or `rag docs list`."
                )
            named = {doc_id for ids in found.values() for doc_id in ids}
            doc_ids = tuple(named if doc_ids is None else named & set(doc_ids))
        return np.asarray(index.catalog.chunk_ids_matching(doc_ids, self.path_prefix), dtype=np.int64)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = 10
) -> list[tuple[int, float]]:
    """Fuse rankings of ids: score(id) = sum of weight / (k + rank), ranks from 1; best first (stable)."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def maximal_marginal_relevance(
    vectors: np.ndarray, relevance: np.ndarray, k: int, lambda_: float
) -> list[int]:
    """Indices of `k` candidates, chosen greedily by lambda * relevance - (1 - lambda) * redundancy.

    Redundancy is the highest cosine similarity to a candidate already chosen.

    `relevance` is rescaled to [0, 1] so ranking scores of any scale mix with cosine similarities.
    """
    n = len(relevance)
    if n == 0:
        return []
    spread = float(relevance.max() - relevance.min())
    rel = (relevance - relevance.min()) / spread if spread > 0 else np.ones(n)
    similarity = vectors @ vectors.T
    chosen: list[int] = []
    redundancy = np.full(n, -np.inf)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = lambda_ * rel - (1 - lambda_) * penalty
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        redundancy = np.maximum(redundancy, similarity[best])
    return chosen


@runtime_checkable
class Reranker(Protocol):
    """Rescores passages for a question; returns them best first with the new scores (every
    implementation passes `tests/contracts.py` `RerankerContract`)."""

    def rerank(self, question: str, passages: Sequence[Passage]) -> list[Passage]: ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder given by Hugging Face id or local path (loaded once)."""

    def __init__(self, model: str, *, allow_downloads: bool = False, device: str = "cpu") -> None:
        if not allow_downloads:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(model, device=device, local_files_only=not allow_downloads)
        except Exception as exc:  # many kinds for a missing model
            raise ModelUnavailableError(
                f"Cannot load the reranker {model!r}: {exc}. Give a local folder or a Hugging Face id "
                "you have downloaded (RAG_ALLOW_DOWNLOADS=1 lets it download), or unset the reranker setting."
            ) from exc

    def rerank(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        if not passages:
            return []
        scores = self.model.predict([(question, p.chunk.text) for p in passages], show_progress_bar=False)
        scores = np.asarray(scores).reshape(-1)
        rescored = [replace(p, score=float(s)) for p, s in zip(passages, scores, strict=True)]
        return sorted(rescored, key=lambda p: -p.score)


class Retriever:
    """Finds the `k` passages most relevant to a question in one index, by the configured mode."""

    def __init__(
        self,
        embedder: Embedder,
        index: Index,
        *,
        mode: RetrievalMode = "hybrid",
        rrf_k: int = 10,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        candidates: int = 100,
        mmr_lambda: float | None = None,
        reranker: Reranker | None = None,
        rerank_candidates: int = 30,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; expected one of {', '.join(MODES)}")
        self.embedder = embedder
        self.index = index
        self.mode = mode
        self.rrf_k = rrf_k
        self.weights = (dense_weight, bm25_weight)
        self.candidates = candidates
        self.mmr_lambda = mmr_lambda
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates

    @classmethod
    def from_settings(
        cls, settings: Settings, embedder: Embedder, index: Index, reranker: Reranker | None = None
    ) -> Retriever:
        return cls(
            embedder,
            index,
            mode=settings.retrieval_mode,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            bm25_weight=settings.bm25_weight,
            candidates=settings.fusion_candidates,
            mmr_lambda=settings.mmr_lambda,
            reranker=reranker,
            rerank_candidates=settings.rerank_candidates,
        )

    def retrieve(
        self,
        question: str,
        k: int,
        filters: RetrievalFilter | None = None,
        mode: RetrievalMode | None = None,
    ) -> list[Passage]:
        """The best `k` passages, best first, each with its score, cosine similarity and provenance.

        `mode` overrides the retriever's mode for this question.
        """
        mode = mode or self.mode
        if mode not in MODES:
            raise InvalidInputError(f"Unknown retrieval mode {mode!r}; expected one of {', '.join(MODES)}.")
        query = self.embedder.embed_query(question)
        allowed = filters.allowed_chunk_ids(self.index) if filters is not None else None
        depth = max(k, self.candidates)
        if self.reranker is not None:
            depth = max(depth, self.rerank_candidates)
        cosine: dict[int, float] = {}
        dense: list[int] = []
        lexical: list[tuple[int, float]] = []
        if mode in ("dense", "hybrid"):
            scores, ids = self.index.vectors.search(query, depth, allowed)
            for chunk_id, score in zip(ids[0], scores[0], strict=True):
                if chunk_id >= 0:
                    dense.append(int(chunk_id))
                    cosine[int(chunk_id)] = float(score)
        if mode in ("bm25", "hybrid"):
            ids, scores = self.index.lexical.search(question, depth, allowed)
            lexical = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]
        if mode == "dense":
            ranked = [(i, cosine[i]) for i in dense]
        elif mode == "bm25":
            ranked = lexical
        else:
            ranked = reciprocal_rank_fusion([dense, [i for i, _ in lexical]], self.weights, self.rrf_k)
        keep = len(ranked) if self.reranker is not None or self.mmr_lambda is not None else k
        passages = self._passages(ranked[: max(keep, k)], query, cosine)
        if self.reranker is not None:
            head = self.reranker.rerank(question, passages[: self.rerank_candidates])
            passages = head + passages[self.rerank_candidates :]
        if self.mmr_lambda is not None and passages:
            vectors = self.index.vectors.vectors(np.asarray([p.chunk.id for p in passages], dtype=np.int64))
            relevance = np.asarray([p.score for p in passages])
            order = maximal_marginal_relevance(vectors, relevance, k, self.mmr_lambda)
            passages = [passages[i] for i in order]
        return passages[:k]

    def _passages(
        self, ranked: list[tuple[int, float]], query: np.ndarray, cosine: dict[int, float]
    ) -> list[Passage]:
        """Passages for ranked chunk ids, with provenance and the cosine similarity of every one."""
        chunks = self.index.catalog.chunks(i for i, _ in ranked)
        missing = np.asarray([i for i, _ in ranked if i not in cosine and i in chunks], dtype=np.int64)
        if len(missing):
            similarity = self.index.vectors.vectors(missing) @ query
            cosine = {**cosine, **dict(zip(missing.tolist(), similarity.tolist(), strict=True))}
        titles = self.index.catalog.titles(c.doc_id for c in chunks.values())
        passages = []
        for chunk_id, score in ranked:
            chunk = chunks.get(chunk_id)
            if chunk is None:
                continue
            title, source = titles.get(chunk.doc_id, (chunk.doc_id, chunk.doc_id))
            similarity = cosine.get(chunk_id)
            passages.append(Passage(chunk, score, source, title, dense_score=similarity))
        return passages


def evidence_score(passages: Sequence[Passage]) -> float | None:
    """The best cosine similarity among the passages: what the evidence gate compares to min_relevance."""
    scores = [p.dense_score if p.dense_score is not None else p.score for p in passages]
    return max(scores) if scores else None
