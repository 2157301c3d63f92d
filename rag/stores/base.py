"""The protocol every vector store implements, and the size-aware choice of its layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

FLAT = "flat-ip"
IVF = "ivf-flat"
VectorIndexSetting = Literal["auto", "flat", "ivf"]
DEFAULT_NPROBE = 128
"""IVF lists probed per query. Measured with evals/scale.py on synthetic overlapping clusters
(--spread 1.0): recall@10 vs exact 0.964 at 200k vectors (894 lists, where `auto` switches to IVF)
and 0.987 at 1M (2,000 lists, p50 4.2 ms); 32 gave 0.837 and 0.959. See evals/RESULTS-retrieval.md."""


@dataclass(frozen=True)
class VectorIndexPolicy:
    """Which layout to use: `auto` switches to IVF at `threshold` vectors (back to flat below half)."""

    kind: VectorIndexSetting = "auto"
    threshold: int = 200_000
    nprobe: int = DEFAULT_NPROBE

    def choose_kind(self, count: int, current: str = FLAT) -> str:
        if self.kind == "flat" or count == 0:
            return FLAT
        if self.kind == "ivf":
            return IVF
        if current == IVF:
            return IVF if count >= self.threshold // 2 else FLAT
        return IVF if count >= self.threshold else FLAT


@runtime_checkable
class VectorStore(Protocol):
    """Vectors keyed by int64 chunk ids, searched by inner product on normalized vectors.

    Every implementation passes `tests/contracts.py` `VectorStoreContract`.
    """

    dimension: int
    kind: str
    """The layout (FLAT, IVF, ...), recorded in the index manifest."""

    def __len__(self) -> int: ...

    def ids(self) -> np.ndarray:
        """Every stored id (int64, in no particular order)."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, shape (len(ids), dimension)."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (n, dimension) under ids (n,); ValueError for another shape."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors of these ids; returns how many were removed."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids (each (n_queries, k)) of the nearest vectors, only among the `allowed` ids when
        given; missing slots have id -1."""
        ...

    def needs_rebuild(self, policy: VectorIndexPolicy) -> str | None:
        """The kind to rebuild into before saving (another layout, or a retrained one), or None."""
        ...

    def converted(self, kind: str) -> VectorStore:
        """The same vectors under the same ids in a store of layout `kind`."""
        ...

    def save(self, path: Path) -> None:
        """Write the store to `path` (the caller makes the write atomic)."""
        ...

    def copy(self) -> VectorStore:
        """An independent copy, to change without touching the original."""
        ...


@runtime_checkable
class SharedVectorStore(Protocol):
    """A store kept outside the index's generation folders (a database such as Milvus) and shared by them.

    `save` writes its additions before the new generation goes live; the index calls `apply_removals`
    once it is live, and `reconcile` when a writer opens it, so the live catalog's chunks always have
    their vectors (see `rag/stores/milvus_store.py`).
    """

    def apply_removals(self) -> None:
        """Delete the vectors removed by the change that just went live."""
        ...

    def reconcile(self, catalog_ids: np.ndarray) -> tuple[int, np.ndarray]:
        """Delete stored vectors the catalog lacks; returns (how many, catalog ids with no vector)."""
        ...
