"""FAISS stores: the VectorStore contract in both layouts, the layout chosen by size, conversions keeping
every vector, filtered search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contracts import VectorStoreContract

from rag.index import FORMAT_VERSION, Index, IndexChange, Manifest
from rag.stores import FLAT, IVF, FaissVectorStore, VectorIndexPolicy, VectorStore


def vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


class TestFlatFaissStore(VectorStoreContract):
    @pytest.fixture
    def store(self) -> VectorStore:
        return FaissVectorStore(16)

    def load(self, path: Path) -> VectorStore:
        return FaissVectorStore.load(path)


class TestIvfFaissStore(VectorStoreContract):
    @pytest.fixture
    def store(self) -> VectorStore:
        """An IVF store trained on other vectors, then emptied."""
        ids = np.arange(400)
        store = FaissVectorStore.build(IVF, ids, vectors(400, seed=3))
        store.remove(ids)
        return store

    def load(self, path: Path) -> VectorStore:
        return FaissVectorStore.load(path)


def test_policy_chooses_by_size_with_hysteresis() -> None:
    policy = VectorIndexPolicy(threshold=1000)
    assert policy.choose_kind(999) == FLAT and policy.choose_kind(1000) == IVF
    assert policy.choose_kind(600, current=IVF) == IVF and policy.choose_kind(400, current=IVF) == FLAT
    assert VectorIndexPolicy(kind="flat").choose_kind(10**7) == FLAT
    assert VectorIndexPolicy(kind="ivf").choose_kind(10) == IVF
    assert VectorIndexPolicy(kind="ivf").choose_kind(0) == FLAT


def test_conversion_keeps_ids_vectors_and_removal() -> None:
    data = vectors(3000)
    ids = np.arange(1000, 4000)
    flat = FaissVectorStore.build(FLAT, ids, data)
    ivf = flat.converted(IVF)
    assert ivf.kind == IVF and sorted(ivf.ids().tolist()) == ids.tolist()
    assert np.allclose(ivf.vectors(ids[:5]), data[:5])
    _, found = ivf.search(data[:20], 1)
    assert (found[:, 0] == ids[:20]).mean() >= 0.9
    assert ivf.remove(ids[:10]) == 10 and len(ivf) == 2990
    back = ivf.converted(FLAT)
    assert back.kind == FLAT and len(back) == 2990


def test_filtered_ivf_search_is_exact_for_few_allowed_ids() -> None:
    data = vectors(3000, seed=1)
    ivf = FaissVectorStore.build(IVF, np.arange(3000), data, nprobe=1)
    allowed = np.array([5, 1500, 2999])
    scores, ids = ivf.search(data[1500], 5, allowed)
    assert ids[0].tolist()[:3] == [1500, *sorted([5, 2999], key=lambda i: -float(data[i] @ data[1500]))]
    assert ids[0].tolist()[3:] == [-1, -1]


def test_commit_switches_layout_by_size_and_records_it(tmp_path: Path) -> None:
    manifest = Manifest(
        format_version=FORMAT_VERSION, embedder="e", dimension=16, chunk_tokens=10, chunk_overlap=0
    )
    change = IndexChange(tmp_path, None, manifest, VectorIndexPolicy(threshold=500))
    change.vectors.add(np.arange(600), vectors(600))
    change.commit()
    index = Index.open(tmp_path)
    assert index.manifest.vector_index == IVF == index.vectors.kind
    change = index.begin(VectorIndexPolicy(threshold=500))
    change.vectors.remove(np.arange(400))
    change.commit()
    index = Index.open(tmp_path)
    assert index.manifest.vector_index == FLAT and len(index.vectors) == 200
