"""The Embedder contract, run against the packaged MiniLM (slow) and the test fake."""

from __future__ import annotations

import pytest
from contracts import EmbedderContract
from fakes import BagOfWordsEmbedder

from rag.embeddings import Embedder


@pytest.mark.slow
class TestSentenceTransformerEmbedder(EmbedderContract):
    """The packaged MiniLM, through the session's `embedder` fixture (tests/conftest.py)."""


class TestBagOfWordsEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return BagOfWordsEmbedder()
