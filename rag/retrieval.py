"""Retrievers find the passages most relevant to a question."""

from __future__ import annotations

from typing import Protocol

from rag.embeddings import Embedder
from rag.index import Index
from rag.types import Passage


class Retriever(Protocol):
    """Returns the `k` passages most relevant to a question, best first."""

    def retrieve(self, question: str, k: int) -> list[Passage]: ...


class DenseRetriever:
    """Nearest chunks by cosine similarity of embeddings (inner product on normalized vectors)."""

    def __init__(self, embedder: Embedder, index: Index) -> None:
        self.embedder = embedder
        self.index = index

    def retrieve(self, question: str, k: int) -> list[Passage]:
        query = self.embedder.embed_query(question)
        scores, ids = self.index.vectors.search(query, k)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        chunks = self.index.catalog.chunks(i for i, _ in hits)
        titles = self.index.catalog.titles(c.doc_id for c in chunks.values())
        passages = []
        for chunk_id, score in hits:
            chunk = chunks.get(chunk_id)
            if chunk is None:
                continue
            title, source = titles.get(chunk.doc_id, (chunk.doc_id, chunk.doc_id))
            passages.append(Passage(chunk=chunk, score=score, source=source, title=title))
        return passages
