"""Vector stores: the `VectorStore` protocol and its FAISS implementation."""

from rag.stores.base import VectorStore
from rag.stores.faiss_store import FaissVectorStore

__all__ = ["FaissVectorStore", "VectorStore"]
