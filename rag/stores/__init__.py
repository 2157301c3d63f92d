"""Vector stores: the `VectorStore` protocol, the size-aware layout policy, the FAISS store (default) and the
Milvus store (a Milvus Lite file or a Milvus server), and the factory that picks one for an index."""

from __future__ import annotations

from pathlib import Path

from rag.stores.base import (
    DEFAULT_NPROBE,
    FLAT,
    IVF,
    SharedVectorStore,
    VectorIndexPolicy,
    VectorStore,
)
from rag.stores.faiss_store import FaissVectorStore
from rag.stores.milvus_store import (
    DEFAULT_LITE_FILE,
    POINTER_FILE,
    MilvusLocation,
    MilvusVectorStore,
    close_milvus_clients,
)

FAISS_FILE = "vectors.faiss"
"""A FAISS store's file in a generation folder."""

__all__ = [
    "DEFAULT_NPROBE",
    "FAISS_FILE",
    "FLAT",
    "IVF",
    "FaissVectorStore",
    "MilvusLocation",
    "MilvusVectorStore",
    "SharedVectorStore",
    "VectorIndexPolicy",
    "VectorStore",
    "close_milvus_clients",
    "milvus_location",
    "new_vector_store",
    "open_vector_store",
    "vectors_file",
]


def milvus_location(
    index_dir: Path, uri: str | None, collection: str | None, index_type: str | None
) -> MilvusLocation:
    """Where an index's Milvus collection is: `uri` (a server URI or a Milvus Lite file), or Milvus Lite's
    file inside the index folder when unset."""
    if uri is None:
        uri = str(index_dir / DEFAULT_LITE_FILE)
    return MilvusLocation(uri, collection or "rag_chunks", index_type or "AUTOINDEX")


def new_vector_store(
    index_dir: Path,
    dimension: int,
    kind: str = "faiss",
    *,
    milvus_uri: str | None = None,
    milvus_collection: str | None = None,
    milvus_index_type: str | None = None,
) -> VectorStore:
    """An empty store of the kind an index's manifest names ("faiss" or "milvus")."""
    if kind == "milvus":
        location = milvus_location(index_dir, milvus_uri, milvus_collection, milvus_index_type)
        return MilvusVectorStore(location, dimension)
    if kind != "faiss":
        raise ValueError(f"unknown vector store {kind!r}: expected 'faiss' or 'milvus'")
    return FaissVectorStore(dimension)


def open_vector_store(folder: Path, *, nprobe: int = DEFAULT_NPROBE) -> VectorStore:
    """The store of a generation folder: the Milvus collection its pointer file names, else its FAISS file."""
    pointer = folder / POINTER_FILE
    if pointer.is_file():
        return MilvusVectorStore.load(pointer)
    return FaissVectorStore.load(folder / FAISS_FILE, nprobe=nprobe)


def vectors_file(store: VectorStore) -> str:
    """The file a store is saved to in a generation folder."""
    return POINTER_FILE if isinstance(store, MilvusVectorStore) else FAISS_FILE
