"""Vector stores: the `VectorStore` protocol, the size-aware layout policy, and the FAISS store."""

from rag.stores.base import DEFAULT_NPROBE, FLAT, IVF, VectorIndexPolicy, VectorStore
from rag.stores.faiss_store import FaissVectorStore

__all__ = ["DEFAULT_NPROBE", "FLAT", "IVF", "FaissVectorStore", "VectorIndexPolicy", "VectorStore"]
