"""Retriever modes, fusion, filters, MMR, the evidence score, and BM25 kept in step with the catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contracts import RerankerContract
from fakes import BagOfWordsEmbedder, ReverseReranker

from rag.catalog import FileRecord
from rag.index import FORMAT_VERSION, Index, IndexChange, Manifest
from rag.retrieval import (
    Reranker,
    RetrievalFilter,
    Retriever,
    evidence_score,
    maximal_marginal_relevance,
    reciprocal_rank_fusion,
)
from rag.types import Chunk, Document

DIM = BagOfWordsEmbedder.dimension


def add_file(change: IndexChange, path: str, title: str, texts: list[str]) -> None:
    change.catalog.put_file(FileRecord(path, f"hash-{path}", 1, 0.0))
    change.catalog.add_document(Document(id=path, source=path, title=title, text=" ".join(texts)), path)
    chunks, offset = [], 0
    for text in texts:
        chunks.append(Chunk(doc_id=path, text=text, start=offset, end=offset + len(text)))
        offset += len(text) + 1
    ids = change.catalog.add_chunks(chunks)
    change.vectors.add(np.asarray(ids), BagOfWordsEmbedder().embed(texts))


@pytest.fixture()
def index(tmp_path: Path) -> Index:
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        embedder="bag-of-words",
        dimension=DIM,
        chunk_tokens=10,
        chunk_overlap=0,
    )
    change = IndexChange(tmp_path, None, manifest)
    add_file(change, "geo/volcano.md", "Volcanoes", ["volcano lava lava", "ice on the volcano"])
    add_file(change, "food/bread.txt", "Bread", ["bread yeast", "Sourdough starter rises overnight"])
    add_file(change, "geo/bees.md", "Bees", ["bee honey flower", "bee flower"])
    change.commit()
    return Index.open(tmp_path)


def test_reciprocal_rank_fusion_hand_computed() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], [1.0, 0.5], k=10)
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 11 + 0.5 / 12)
    assert scores[3] == pytest.approx(1 / 13 + 0.5 / 11)
    assert scores[2] == pytest.approx(1 / 12)
    assert [i for i, _ in fused] == [1, 3, 2]


def test_mmr_skips_near_duplicates() -> None:
    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    relevance = np.array([1.0, 0.99, 0.5])
    assert maximal_marginal_relevance(vectors, relevance, 2, 1.0) == [0, 1]
    assert maximal_marginal_relevance(vectors, relevance, 2, 0.5) == [0, 2]


def test_modes_find_the_right_chunks(index: Index) -> None:
    embedder = BagOfWordsEmbedder()
    dense = Retriever(embedder, index, mode="dense").retrieve("lava volcano", 2)
    assert dense[0].chunk.text == "volcano lava lava" and dense[0].score == dense[0].dense_score
    lexical = Retriever(embedder, index, mode="bm25").retrieve("sourdough starter", 2)
    assert [p.chunk.text for p in lexical] == ["Sourdough starter rises overnight"]
    hybrid = Retriever(embedder, index, mode="hybrid").retrieve("sourdough bread", 3)
    assert {p.chunk.doc_id for p in hybrid[:2]} == {"food/bread.txt"}
    for passage in hybrid:
        assert passage.dense_score is not None and -1.0 <= passage.dense_score <= 1.0
        assert passage.title == "Bread" or passage.chunk.doc_id != "food/bread.txt"


def test_evidence_score_is_the_best_cosine_not_the_fused_score(index: Index) -> None:
    retriever = Retriever(BagOfWordsEmbedder(), index, mode="hybrid")
    passages = retriever.retrieve("bee flower", 3)
    assert passages[0].score <= 2 / (retriever.rrf_k + 1)  # an RRF score: two rankings, rank 1 at best
    assert evidence_score(passages) == pytest.approx(max(p.dense_score for p in passages))
    assert evidence_score(passages) > 0.9
    assert evidence_score([]) is None


def test_filters_by_document_and_path_prefix(index: Index) -> None:
    retriever = Retriever(BagOfWordsEmbedder(), index, mode="hybrid")
    only_bees = retriever.retrieve("volcano lava", 5, RetrievalFilter(doc_ids=("geo/bees.md",)))
    assert only_bees and {p.chunk.doc_id for p in only_bees} == {"geo/bees.md"}
    geo = retriever.retrieve("bread yeast", 10, RetrievalFilter(path_prefix="geo/"))
    assert geo and all(p.source.startswith("geo/") for p in geo)
    assert retriever.retrieve("bread", 5, RetrievalFilter(doc_ids=())) == []


def test_bm25_follows_removals_at_commit(index: Index, tmp_path: Path) -> None:
    change = index.begin()
    removed = change.catalog.remove_file("food/bread.txt")
    change.vectors.remove(np.asarray(removed))
    change.commit()
    reopened = Index.open(tmp_path)
    assert (reopened.folder / "lexical").is_dir()
    assert set(reopened.lexical.chunk_ids.tolist()) == set(reopened.catalog.chunk_ids())
    assert Retriever(BagOfWordsEmbedder(), reopened, mode="bm25").retrieve("sourdough", 3) == []


class TestReverseReranker(RerankerContract):
    """The test fake only: no cross-encoder model is available offline (none ships in a package), so the
    CrossEncoderReranker cannot run here."""

    @pytest.fixture
    def reranker(self) -> Reranker:
        return ReverseReranker()


def test_reranker_reorders_the_head(index: Index) -> None:
    plain = Retriever(BagOfWordsEmbedder(), index, mode="dense", candidates=3).retrieve("bee", 3)
    reranked = Retriever(
        BagOfWordsEmbedder(),
        index,
        mode="dense",
        candidates=3,
        reranker=ReverseReranker(),
        rerank_candidates=3,
    ).retrieve("bee", 3)
    assert [p.chunk.id for p in reranked] == [p.chunk.id for p in reversed(plain)]
