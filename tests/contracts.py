"""Contract tests: one reusable class per protocol that every implementation must pass.

In the style of Haystack's `haystack/testing/document_store.py`: a test module subclasses the
contract and provides the fixture it names (`store`, `embedder`, `generator`, `checker`, `reranker`),
so a new implementation is tested by a subclass of a few lines, e.g.

    class TestFaissFlatStore(VectorStoreContract):
        @pytest.fixture
        def store(self) -> VectorStore: ...

        def load(self, path: Path) -> VectorStore: ...

The class names do not start with "Test", so pytest collects them only through their subclasses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.embeddings import Embedder
from rag.generation import Generator
from rag.retrieval import Reranker
from rag.stores import SharedVectorStore, VectorIndexPolicy, VectorStore
from rag.support import SupportChecker
from rag.types import Chunk, Passage


def unit_vectors(n: int, dimension: int, seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


class VectorStoreContract:
    """What every VectorStore does; the `store` fixture is an empty store, `load` reads a saved one."""

    def load(self, path: Path) -> VectorStore:
        raise NotImplementedError

    def filled(self, store: VectorStore, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
        ids = np.arange(1000, 1000 + n, dtype=np.int64)
        data = unit_vectors(n, store.dimension)
        store.add(ids, data)
        return ids, data

    def test_is_an_empty_vector_store(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)
        assert len(store) == 0 and store.ids().tolist() == [] and store.kind
        scores, ids = store.search(unit_vectors(2, store.dimension), 3)
        assert scores.shape == ids.shape == (2, 3) and (ids == -1).all()

    def test_each_vector_is_its_own_nearest_by_inner_product(self, store: VectorStore) -> None:
        ids, data = self.filled(store)
        assert len(store) == len(ids) and sorted(store.ids().tolist()) == ids.tolist()
        scores, found = store.search(data[:10], 5)
        assert found[:, 0].tolist() == ids[:10].tolist()
        assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
        assert (np.diff(scores, axis=1) <= 1e-6).all()
        expected = (data[:10] @ data.T).max(axis=1)
        assert np.allclose(scores[:, 0], expected, atol=1e-5)

    def test_one_query_may_be_a_single_vector(self, store: VectorStore) -> None:
        ids, data = self.filled(store)
        _, found = store.search(data[3], 1)
        assert found.shape == (1, 1) and found[0, 0] == ids[3]

    def test_missing_slots_have_id_minus_one(self, store: VectorStore) -> None:
        ids, data = self.filled(store, 3)
        _, found = store.search(data[:1], 5)
        assert sorted(found[0, :3].tolist()) == ids.tolist() and found[0, 3:].tolist() == [-1, -1]

    def test_allowed_ids_restrict_the_search(self, store: VectorStore) -> None:
        ids, data = self.filled(store)
        allowed = ids[[5, 40, 59]]
        _, found = store.search(data[:4], 5, allowed)
        assert set(found[:, :3].ravel().tolist()) <= set(allowed.tolist())
        assert (found[:, 3:] == -1).all()
        _, found = store.search(data[:2], 3, np.zeros(0, dtype=np.int64))
        assert (found == -1).all()
        _, found = store.search(data[5], 3, np.array([ids[5], 99_999]))
        assert found[0].tolist() == [ids[5], -1, -1]

    def test_removed_vectors_are_never_found(self, store: VectorStore) -> None:
        ids, data = self.filled(store)
        assert store.remove(ids[:10]) == 10
        assert store.remove(np.array([99_999])) == 0 and store.remove(np.zeros(0, dtype=np.int64)) == 0
        assert len(store) == 50 and not set(store.ids().tolist()) & set(ids[:10].tolist())
        _, found = store.search(data[:10], 5)
        assert not set(found.ravel().tolist()) & set(ids[:10].tolist())

    def test_stored_vectors_are_returned_by_id(self, store: VectorStore) -> None:
        ids, data = self.filled(store)
        assert np.allclose(store.vectors(ids[[7, 2]]), data[[7, 2]], atol=1e-6)
        assert store.vectors(np.zeros(0, dtype=np.int64)).shape == (0, store.dimension)

    def test_vectors_of_another_shape_are_refused(self, store: VectorStore) -> None:
        with pytest.raises(ValueError):
            store.add(np.arange(2), unit_vectors(2, store.dimension + 1))
        with pytest.raises(ValueError):
            store.add(np.arange(3), unit_vectors(2, store.dimension))
        store.add(np.zeros(0, dtype=np.int64), np.zeros((0, store.dimension), dtype=np.float32))
        assert len(store) == 0

    def test_a_copy_changes_independently(self, store: VectorStore) -> None:
        ids, _ = self.filled(store)
        copy = store.copy()
        copy.remove(ids[:5])
        copy.add(np.array([5]), unit_vectors(1, store.dimension, seed=9))
        assert len(store) == 60 and len(copy) == 56 and 5 not in store.ids().tolist()

    def test_conversion_keeps_ids_and_vectors(self, store: VectorStore) -> None:
        ids, data = self.filled(store)
        converted = store.converted(store.kind)
        assert converted.kind == store.kind and sorted(converted.ids().tolist()) == ids.tolist()
        assert np.allclose(converted.vectors(ids), data, atol=1e-6)

    @pytest.mark.parametrize("setting", ["auto", "flat", "ivf"])
    def test_a_rebuild_the_policy_asks_for_settles_it(self, store: VectorStore, setting: str) -> None:
        ids, data = self.filled(store)
        policy = VectorIndexPolicy(kind=setting)  # type: ignore[arg-type]
        wanted = store.needs_rebuild(policy)
        rebuilt = store.converted(wanted) if wanted is not None else store
        assert rebuilt.needs_rebuild(policy) is None
        assert sorted(rebuilt.ids().tolist()) == ids.tolist()
        assert np.allclose(rebuilt.vectors(ids), data, atol=1e-6)

    def test_what_is_saved_loads_the_same(self, store: VectorStore, tmp_path: Path) -> None:
        ids, data = self.filled(store)
        store.save(tmp_path / "store")
        loaded = self.load(tmp_path / "store")
        assert loaded.kind == store.kind and loaded.dimension == store.dimension
        assert sorted(loaded.ids().tolist()) == ids.tolist()
        assert np.array_equal(loaded.search(data[:5], 3)[1], store.search(data[:5], 3)[1])

    def test_a_saved_change_holds_its_removals(self, store: VectorStore, tmp_path: Path) -> None:
        """Saved (and, for a store shared by generations, its removals applied once live), a change that
        removed vectors loads without them."""
        ids, _ = self.filled(store)
        store.save(tmp_path / "before")
        change = store.copy()
        assert change.remove(ids[:3]) == 3
        change.save(tmp_path / "after")
        if isinstance(change, SharedVectorStore):
            change.apply_removals()
        assert sorted(self.load(tmp_path / "after").ids().tolist()) == ids[3:].tolist()


class EmbedderContract:
    """What every Embedder does; the `embedder` fixture gives one."""

    def test_is_an_embedder(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert embedder.name and embedder.dimension > 0 and embedder.max_tokens > 0

    def test_vectors_are_normalized_float32_one_row_per_text(self, embedder: Embedder) -> None:
        vectors = embedder.embed(["Lava flows from the volcano.", "Bread needs yeast.", "Bees make honey."])
        assert vectors.shape == (3, embedder.dimension) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert embedder.embed([]).shape == (0, embedder.dimension)

    def test_a_query_is_embedded_as_the_same_text_in_a_batch(self, embedder: Embedder) -> None:
        query = embedder.embed_query("Which volcano erupted?")
        assert query.shape == (embedder.dimension,) and query.dtype == np.float32
        batch = embedder.embed(["A longer text about bread and yeast.", "Which volcano erupted?"])
        assert float(query @ batch[1]) > 0.9999  # the same vector, up to the rounding of its arithmetic

    def test_related_texts_are_nearer_than_unrelated_ones(self, embedder: Embedder) -> None:
        query = embedder.embed_query("volcano lava")
        near, far = embedder.embed(["The volcano poured lava.", "Bread rises with yeast."])
        assert float(query @ near) > float(query @ far)

    def test_progress_counts_every_text(self, embedder: Embedder) -> None:
        done: list[int] = []
        embedder.embed([f"text {n}" for n in range(7)], batch_size=2, on_batch=done.append)
        assert sum(done) == 7

    def test_counts_tokens(self, embedder: Embedder) -> None:
        short, long = embedder.count(["volcano", "volcano lava and ice over the honey bee"])
        assert 0 < short < long
        assert embedder.count([]) == [] and embedder.count([""]) == [0]

    def test_splits_text_into_contiguous_spans_within_the_budget(self, embedder: Embedder) -> None:
        text = " ".join(f"word{n} lava" for n in range(40))
        spans = embedder.split(text, 10)
        assert spans[0][0] == 0 and spans[-1][1] == len(text) and len(spans) > 1
        assert all(a == b for (_, a), (b, _) in zip(spans, spans[1:]))
        assert all(n <= 10 for n in embedder.count([text[a:b] for a, b in spans]))
        assert embedder.split("short text", 10) == [(0, 10)]


SOURCE = "Source [1]: The capital of Freedonia is Lakeview."
GROUNDED = [
    {
        "role": "user",
        "content": f"{SOURCE}\nQuestion: What is the capital of Freedonia? Answer with a citation like [1].",
    }
]
LONG_ANSWER = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
MAX_TOKENS = 24  # few: transformers decodes about 7 tokens/s on 2 CPU cores


class GeneratorContract:
    """What every Generator does; the `generator` fixture gives one that answers GROUNDED and
    LONG_ANSWER (a fake may script those replies)."""

    def test_is_a_generator(self, generator: Generator) -> None:
        assert isinstance(generator, Generator)
        assert generator.name

    def test_streams_text_pieces_with_stats(self, generator: Generator) -> None:
        stream = generator.stream(GROUNDED, max_tokens=MAX_TOKENS)
        pieces = list(stream)
        assert pieces
        assert all(isinstance(piece, str) and piece for piece in pieces)
        assert stream.done
        stats = stream.stats
        assert stats.prompt_tokens > 0
        assert 0 < stats.completion_tokens <= MAX_TOKENS
        assert 0.0 < stats.first_token_seconds <= stats.total_seconds
        assert stream.text == "".join(pieces)

    def test_respects_max_tokens(self, generator: Generator) -> None:
        stream = generator.stream(LONG_ANSWER, max_tokens=6)
        text = "".join(stream)
        assert 0 < stream.stats.completion_tokens <= 6
        assert generator.count_tokens(text) <= 7, text

    def test_closing_early_frees_the_model_for_the_next_answer(self, generator: Generator) -> None:
        stream = generator.stream(LONG_ANSWER, max_tokens=MAX_TOKENS)
        assert next(stream)
        stream.close()
        assert stream.done
        again = generator.stream(GROUNDED, max_tokens=4)
        assert "".join(again)

    def test_counts_tokens(self, generator: Generator) -> None:
        assert generator.count_tokens("The capital of Freedonia is Lakeview.") > 0
        assert generator.count_tokens("") == 0


EVIDENCE = [
    "Mount Erebus is the southernmost active volcano on Earth. It was first climbed in 1908.",
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.",
]


class SupportCheckerContract:
    """What every SupportChecker does; the `checker` fixture gives one."""

    def test_is_a_support_checker(self, checker: SupportChecker) -> None:
        assert isinstance(checker, SupportChecker) and checker.name

    def test_one_score_in_0_1_per_claim(self, checker: SupportChecker) -> None:
        scores = checker.score(
            ["Erebus was first climbed in 1908.", "Bread rises."], [[EVIDENCE[0]], [EVIDENCE[1]]]
        )
        assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
        assert checker.score([], []) == []

    def test_no_evidence_is_no_support(self, checker: SupportChecker) -> None:
        assert checker.score(["Erebus was first climbed in 1908."], [[]]) == [0.0]

    def test_stated_claims_outscore_unstated_ones(self, checker: SupportChecker) -> None:
        stated, unstated, wrong_source = checker.score(
            [
                "Mount Erebus was first climbed in 1908.",
                "Mount Erebus erupted violently in 1974 and 1991.",
                "Mount Erebus was first climbed in 1908.",
            ],
            [[EVIDENCE[0]], [EVIDENCE[0]], [EVIDENCE[1]]],
        )
        assert stated > unstated and stated > wrong_source

    def test_several_passages_together_support_a_claim(self, checker: SupportChecker) -> None:
        claim = "Erebus was climbed in 1908 and wild yeast ferment the dough."
        alone, both = checker.score([claim, claim], [[EVIDENCE[0]], EVIDENCE])
        assert both > alone

    def test_an_unsupported_extra_clause_lowers_support(self, checker: SupportChecker) -> None:
        supported, with_extra = checker.score(
            [
                "Mount Erebus was first climbed in 1908.",
                "Mount Erebus was first climbed in 1908, by a Norwegian team led by Roald Amundsen.",
            ],
            [[EVIDENCE[0]], [EVIDENCE[0]]],
        )
        assert supported > with_extra


def passages(*texts: str) -> list[Passage]:
    """Passages of these texts, scored in falling order as a first-stage retriever would."""
    chunks = [Chunk(doc_id=f"d{n}", text=text, start=0, end=len(text), id=n) for n, text in enumerate(texts)]
    return [Passage(chunk, 1.0 - n / 10, chunk.doc_id, chunk.doc_id) for n, chunk in enumerate(chunks)]


class RerankerContract:
    """What every Reranker does; the `reranker` fixture gives one."""

    def test_is_a_reranker(self, reranker: Reranker) -> None:
        assert isinstance(reranker, Reranker)

    def test_returns_the_same_passages_best_first(self, reranker: Reranker) -> None:
        given = passages("Bread rises with yeast.", "Erebus is a volcano.", "Bees make honey.")
        ranked = reranker.rerank("Which volcano is in Antarctica?", given)
        assert sorted(p.chunk.id for p in ranked) == [p.chunk.id for p in given]
        assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))
        assert {p.chunk.id: p.source for p in ranked} == {p.chunk.id: p.source for p in given}

    def test_nothing_to_rerank(self, reranker: Reranker) -> None:
        assert reranker.rerank("Which volcano?", []) == []
