"""Settings: defaults, rag.toml, RAG_* environment and explicit values, in that order of precedence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import PACKAGED_EMBEDDER, Settings


def test_defaults_are_sane(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.index_dir == Path("index/default")
    assert settings.embedder == PACKAGED_EMBEDDER
    assert settings.chunk_tokens <= 256, "chunks must fit MiniLM's 256-token window"
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.threads >= 1


def test_every_field_is_described() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"


def test_precedence_toml_then_env_then_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rag.toml").write_text('top_k = 7\nport = 9000\nindex_dir = "from-toml"\n')
    assert Settings().top_k == 7
    monkeypatch.setenv("RAG_TOP_K", "9")
    settings = Settings()
    assert settings.top_k == 9 and settings.port == 9000 and settings.index_dir == Path("from-toml")
    assert Settings(top_k=3).top_k == 3


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError):
        Settings(top_k=0)
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_tokens=64, chunk_overlap=64)
    monkeypatch.setenv("RAG_PORT", "not-a-port")
    with pytest.raises(ValidationError):
        Settings()


def test_descriptions_hold_no_measurements() -> None:
    """Figures measured once go stale in a description: they live in evals/RESULTS-*.md."""
    measured = re.compile(r"\d\s?%|\d\s?m?s\b|AUC|nDCG|recall@|p50|p95|lets \d")
    for name, field in Settings.model_fields.items():
        assert not measured.search(field.description or ""), f"setting {name}: move figures to evals/"
