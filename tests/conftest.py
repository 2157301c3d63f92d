"""Shared fixtures: the real packaged embedder, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def embedder():
    from rag.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()
