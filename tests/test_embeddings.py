"""The Embedder contract, run against the packaged MiniLM on torch and on ONNX Runtime (slow) and the test
fake; the ONNX export's vectors against torch's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contracts import EmbedderContract
from fakes import BagOfWordsEmbedder

from rag.config import PACKAGED_EMBEDDER
from rag.embeddings import Embedder, OnnxEmbedder, QueryRuntimeEmbedder, load_embedder, onnx_folder


@pytest.mark.slow
class TestSentenceTransformerEmbedder(EmbedderContract):
    """The packaged MiniLM, through the session's `embedder` fixture (tests/conftest.py)."""


class TestBagOfWordsEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return BagOfWordsEmbedder()


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache: Path) -> OnnxEmbedder:
    """The packaged MiniLM exported to ONNX (once for this module) from its packaged weights."""
    return OnnxEmbedder(cache_dir=onnx_cache)


@pytest.mark.slow
class TestOnnxEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, onnx_embedder: OnnxEmbedder) -> Embedder:
        return onnx_embedder


@pytest.mark.slow
class TestTorchWithOnnxQueries(EmbedderContract):
    """The default: ingest on torch, questions on ONNX Runtime (setting query_embedder_backend)."""

    @pytest.fixture
    def embedder(self, onnx_embedder: OnnxEmbedder, onnx_cache: Path) -> Embedder:
        split = load_embedder(backend="torch", query_backend="onnx", cache_dir=onnx_cache)
        assert isinstance(split, QueryRuntimeEmbedder)
        assert isinstance(split.query_embedder(), OnnxEmbedder)
        return split


@pytest.fixture(scope="module")
def bfloat16_embedder() -> Embedder:
    from rag.embeddings import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder(precision="bfloat16")
    assert model.bfloat16
    return model


@pytest.mark.slow
class TestTorchBfloat16(EmbedderContract):
    """Batches in bfloat16 (setting embedder_precision; auto picks it on CPUs that compute it natively)."""

    @pytest.fixture
    def embedder(self, bfloat16_embedder: Embedder) -> Embedder:
        return bfloat16_embedder


@pytest.mark.slow
def test_bfloat16_batches_give_float32_vectors_up_to_rounding(
    embedder: Embedder, bfloat16_embedder: Embedder
) -> None:
    bfloat16 = bfloat16_embedder.embed(TEXTS)
    assert bfloat16.dtype == np.float32
    assert np.allclose(np.linalg.norm(bfloat16, axis=1), 1.0, atol=1e-5)
    assert np.all((bfloat16 * embedder.embed(TEXTS)).sum(axis=1) > 0.9999)


class TestQueryRuntime:
    def test_loads_the_query_runtime_at_the_first_question_and_once(self) -> None:
        loads: list[int] = []

        def load() -> Embedder:
            loads.append(1)
            return BagOfWordsEmbedder()

        split = QueryRuntimeEmbedder(BagOfWordsEmbedder(), load, "onnx")
        split.embed(["volcano lava"])
        assert loads == []
        first = split.embed_query("volcano")
        assert np.allclose(first, split.embed_query("volcano")) and loads == [1]

    def test_a_runtime_that_cannot_load_leaves_questions_to_the_batch_runtime(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken() -> Embedder:
            raise RuntimeError("no exporter for this model")

        batch = BagOfWordsEmbedder()
        split = QueryRuntimeEmbedder(batch, broken, "onnx")
        assert np.allclose(split.embed_query("volcano lava"), batch.embed_query("volcano lava"))
        assert "query_embedder_backend onnx is unavailable" in caplog.text
        assert "no exporter for this model" in caplog.text


TEXTS = [
    "Mount Erebus is the southernmost active volcano on Earth.",
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.",
    "Vitamin D supplementation did not reduce the incidence of hip fractures in older adults, a randomized "
    "trial of 25,000 participants found over five years of follow-up.",
]


@pytest.mark.slow
def test_onnx_vectors_match_torch_and_int8_stays_close(
    embedder: Embedder, onnx_embedder: OnnxEmbedder, onnx_cache: Path
) -> None:
    torch_vectors = embedder.embed(TEXTS)
    assert np.all((torch_vectors * onnx_embedder.embed(TEXTS)).sum(axis=1) > 0.999)
    assert float(embedder.embed_query(TEXTS[0]) @ onnx_embedder.embed_query(TEXTS[0])) > 0.999
    int8 = load_embedder(backend="onnx-int8", cache_dir=onnx_cache)
    assert isinstance(int8, OnnxEmbedder) and int8.path.name == "model-int8.onnx"
    assert np.all((torch_vectors * int8.embed(TEXTS)).sum(axis=1) > 0.98)
    _, torch_tokens = embedder.token_embeddings(TEXTS[:1])  # type: ignore[attr-defined]
    _, onnx_tokens = onnx_embedder.token_embeddings(TEXTS[:1])
    assert onnx_tokens[0][0] == torch_tokens[0][0]
    assert np.all((onnx_tokens[0][1] * torch_tokens[0][1]).sum(axis=1) > 0.999)


@pytest.mark.slow
def test_the_export_is_made_once_and_reused(onnx_embedder: OnnxEmbedder, onnx_cache: Path) -> None:
    folder = onnx_folder(PACKAGED_EMBEDDER, onnx_cache)
    assert onnx_embedder.path == folder / "model.onnx"
    made = onnx_embedder.path.stat().st_mtime_ns
    again = OnnxEmbedder(cache_dir=onnx_cache)
    assert again.path.stat().st_mtime_ns == made
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
