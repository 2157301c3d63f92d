"""FAISS vector store: exact inner product while small, IVF (approximate) when large, stable int64 ids.

Both layouts support removal by id and reconstruction of stored vectors (for MMR and the evidence
gate), which is why the approximate layout is IVF rather than HNSW (HNSW cannot remove vectors).
`choose_kind` picks the layout from the collection size; the chosen kind is recorded in the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from rag.errors import IndexCorruptError
from rag.stores.base import DEFAULT_NPROBE, FLAT, IVF, VectorIndexPolicy

_EXACT_FILTER_LIMIT = 20_000
_SINGLE_THREAD_SCAN = 100_000
"""A one-query search scanning at most this many vectors runs on one OpenMP thread: starting a
thread team costs more than it saves there (SciFact's 11k chunks: 0.4 ms on one thread, 1.7 ms on
two, on the busy 2-core CPU)."""


@contextmanager
def _omp_threads(count: int | None) -> Iterator[None]:
    """FAISS OpenMP threads for searches started by the calling thread (an OpenMP per-thread setting)."""
    if count is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _faiss_reason(exc: BaseException) -> str:
    """The useful part of a FAISS error: its last line, without the C++ source location."""
    if isinstance(exc, MemoryError):
        return "its header asks for more memory than there is"
    if "read error" in str(exc):
        return "it ends early: truncated or empty"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    return last.split(": ", 1)[-1] if last.startswith("Error in ") else last


def ivf_lists(count: int) -> int:
    """Inverted lists for `count` vectors: about 2 * sqrt(n), so training stays fast on a CPU."""
    return max(1, min(65536, int(2 * math.sqrt(max(count, 1)))))


class FaissVectorStore:
    """A `VectorStore`: the catalog's chunk ids and their vectors, in an `IndexIDMap2(IndexFlatIP)` or an
    `IndexIVFFlat`."""

    kind = FLAT

    def __init__(
        self, dimension: int, index: faiss.Index | None = None, *, nprobe: int = DEFAULT_NPROBE
    ) -> None:
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.kind = IVF if isinstance(faiss.try_extract_index_ivf(self.index), faiss.IndexIVF) else FLAT
        self.nprobe = nprobe

    @classmethod
    def load(cls, path: Path, *, nprobe: int = DEFAULT_NPROBE) -> FaissVectorStore:
        """The store saved at `path`; IndexCorruptError (saying what is wrong) when it cannot be read."""
        if not path.is_file():
            raise IndexCorruptError("is missing")
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, MemoryError) as exc:
            raise IndexCorruptError(f"is not a readable FAISS index ({_faiss_reason(exc)})") from exc
        if not isinstance(index, faiss.IndexIDMap2) and faiss.try_extract_index_ivf(index) is None:
            raise IndexCorruptError(f"holds a FAISS {type(index).__name__}, not an id-mapped or IVF index")
        return cls(index.d, index, nprobe=nprobe)

    @classmethod
    def build(
        cls, kind: str, ids: np.ndarray, vectors: np.ndarray, *, nprobe: int = DEFAULT_NPROBE
    ) -> FaissVectorStore:
        """A store of the given kind holding these vectors (IVF is trained on them)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        if kind == FLAT:
            store = cls(dimension, nprobe=nprobe)
        else:
            lists = ivf_lists(len(vectors))
            quantizer = faiss.IndexFlatIP(dimension)
            index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = 10
            index.cp.min_points_per_centroid = 5
            sample = vectors
            if len(vectors) > 40 * lists:
                rows = np.random.default_rng(0).choice(len(vectors), 40 * lists, replace=False)
                sample = vectors[np.sort(rows)]
            if len(sample) < lists:
                sample = np.vstack([sample] * math.ceil(lists / len(sample)))
            index.train(sample)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            store = cls(dimension, index, nprobe=nprobe)
        store.add(ids, vectors)
        return store

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """Every stored id."""
        if self.kind == FLAT:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self.index)
        lists = ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
            for n in range(ivf.nlist)
            if lists.list_size(n)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, shape (len(ids), dimension)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self.index.reconstruct(int(i)) for i in ids]).astype(np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dimension}), got {vectors.shape}")
        self.index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        return int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the nearest vectors, optionally only among the `allowed` ids."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0 or (allowed is not None and len(allowed) == 0):
            shape = (queries.shape[0], k)
            return np.zeros(shape, dtype=np.float32), np.full(shape, -1, dtype=np.int64)
        if allowed is not None and self.kind == IVF and len(allowed) <= _EXACT_FILTER_LIMIT:
            return self._exact_search(queries, k, np.ascontiguousarray(allowed, dtype=np.int64))
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self.kind == IVF:
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
            if selector is not None:
                params.sel = selector
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        threads = 1 if len(queries) == 1 and self._scan_size() <= _SINGLE_THREAD_SCAN else None
        with _omp_threads(threads):
            return self.index.search(queries, k, params=params)

    def _scan_size(self) -> int:
        """About how many vectors one query compares: all of them (flat), or the probed lists (IVF)."""
        if self.kind != IVF:
            return len(self)
        nlist = faiss.extract_index_ivf(self.index).nlist
        return nlist + len(self) * min(self.nprobe, nlist) // max(nlist, 1)

    def _exact_search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores over a few allowed vectors (an IVF probe could miss all of them)."""
        allowed = allowed[np.isin(allowed, self.ids())]
        scores = queries @ self.vectors(allowed).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
        top_ids = allowed[order]
        if top_ids.shape[1] < k:
            pad = k - top_ids.shape[1]
            top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=0.0)
            top_ids = np.pad(top_ids, ((0, 0), (0, pad)), constant_values=-1)
        return top_scores, top_ids

    def converted(self, kind: str) -> FaissVectorStore:
        """The same vectors in a store of another kind (or a retrained IVF)."""
        ids = self.ids()
        return FaissVectorStore.build(kind, ids, self.vectors(ids), nprobe=self.nprobe)

    def needs_rebuild(self, policy: VectorIndexPolicy) -> str | None:
        """The kind to rebuild into at commit: another layout, or a retrained IVF once the collection grew."""
        wanted = policy.choose_kind(len(self), self.kind)
        if wanted != self.kind:
            return wanted
        if self.kind == IVF and ivf_lists(len(self)) > 2 * faiss.extract_index_ivf(self.index).nlist:
            return IVF
        return None

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    def copy(self) -> FaissVectorStore:
        return FaissVectorStore(self.dimension, faiss.clone_index(self.index), nprobe=self.nprobe)
