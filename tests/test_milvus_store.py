"""Milvus store on Milvus Lite (embedded, a local file): the VectorStore contract, changes held until saved,
removals applied once a generation is live, and reconciliation with the catalog after a crash."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from contracts import VectorStoreContract, unit_vectors

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rag.stores import (  # noqa: E402
    MilvusLocation,
    MilvusVectorStore,
    SharedVectorStore,
    VectorStore,
    close_milvus_clients,
)

_names = itertools.count()


@pytest.fixture(scope="module")
def lite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Milvus Lite file for the module (each test uses a collection of its own)."""
    yield tmp_path_factory.mktemp("milvus") / "milvus.db"
    close_milvus_clients()


def fresh_store(lite_file: Path, dimension: int = 16) -> MilvusVectorStore:
    return MilvusVectorStore(MilvusLocation(str(lite_file), f"test_{next(_names)}"), dimension)


class TestMilvusLiteStore(VectorStoreContract):
    @pytest.fixture
    def store(self, lite_file: Path) -> VectorStore:
        return fresh_store(lite_file)

    def load(self, path: Path) -> VectorStore:
        return MilvusVectorStore.load(path)


def test_is_a_shared_store_whose_changes_wait_for_save(lite_file: Path, tmp_path: Path) -> None:
    store = fresh_store(lite_file)
    assert isinstance(store, SharedVectorStore)
    store.add(np.arange(5), unit_vectors(5, 16))
    other = MilvusVectorStore(store.location, 16)
    assert len(store) == 5 and len(other) == 0, "nothing reaches Milvus before save"
    store.save(tmp_path / "vectors.milvus.json")
    assert len(other) == 5


def test_removals_reach_milvus_only_when_applied(lite_file: Path, tmp_path: Path) -> None:
    store = fresh_store(lite_file)
    data = unit_vectors(6, 16)
    store.add(np.arange(6), data)
    store.save(tmp_path / "a.json")
    change = store.copy()
    assert change.remove(np.array([1, 2])) == 2 and change.remove(np.array([1])) == 0
    change.add(np.array([7]), unit_vectors(1, 16, seed=4))
    change.save(tmp_path / "b.json")
    reader = MilvusVectorStore.load(tmp_path / "a.json")
    assert sorted(reader.ids().tolist()) == [0, 1, 2, 3, 4, 5, 7], "the old generation keeps its vectors"
    change.apply_removals()
    assert sorted(reader.ids().tolist()) == [0, 3, 4, 5, 7]
    _, found = reader.search(data[1], 3)
    assert 1 not in found[0].tolist()


def test_an_added_vector_replaces_a_stored_one_with_the_same_id(lite_file: Path, tmp_path: Path) -> None:
    store = fresh_store(lite_file)
    store.add(np.arange(3), unit_vectors(3, 16))
    store.save(tmp_path / "a.json")
    replacement = unit_vectors(1, 16, seed=7)
    store.add(np.array([1]), replacement)
    assert len(store) == 3
    scores, found = store.search(replacement, 3)
    assert found[0, 0] == 1 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert found[0].tolist().count(1) == 1
    store.save(tmp_path / "a.json")
    assert np.allclose(store.vectors(np.array([1])), replacement, atol=1e-6)


def test_reconcile_deletes_orphans_and_reports_missing(lite_file: Path, tmp_path: Path) -> None:
    store = fresh_store(lite_file)
    store.add(np.arange(10), unit_vectors(10, 16))
    store.save(tmp_path / "a.json")
    orphans, missing = store.reconcile(np.array([0, 1, 2, 3, 11, 12]))
    assert orphans == 6 and missing.tolist() == [11, 12]
    assert sorted(store.ids().tolist()) == [0, 1, 2, 3]


def test_a_collection_of_another_dimension_is_refused(lite_file: Path) -> None:
    from rag.errors import IndexIncompatibleError

    store = fresh_store(lite_file)
    with pytest.raises(IndexIncompatibleError, match="dimensions"):
        MilvusVectorStore(store.location, 32)


def test_a_bad_collection_name_is_refused(lite_file: Path) -> None:
    from rag.errors import RagError

    with pytest.raises(RagError, match="milvus_collection"):
        MilvusVectorStore(MilvusLocation(str(lite_file), "9 bad-name"), 16)
