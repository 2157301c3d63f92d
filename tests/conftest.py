"""Shared fixtures: the real packaged embedder, loaded once per test session, and the marker rule for it."""

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


REAL_MODEL_FIXTURES = frozenset({"embedder"})
"""Fixtures that load a real model: every test using one is slow, whether or not it says so."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that load the real embedder `slow`, so `-m "not slow"` never loads a model."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
