"""The protocol every vector store implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class VectorStore(Protocol):
    """Vectors keyed by int64 chunk ids, searched by inner product on normalized vectors."""

    dimension: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (n, dimension) under ids (n,)."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors of these ids; returns how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids (each (n_queries, k)) of the nearest vectors; missing slots have id -1."""
        ...

    def save(self, path: Path) -> None:
        """Write the store to `path` (the caller makes the write atomic)."""
        ...

    def copy(self) -> VectorStore:
        """An independent copy, to change without touching the original."""
        ...
