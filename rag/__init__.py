"""rag: answers from your documents, with citations to the exact passages used."""

__version__ = "0.1.0"
