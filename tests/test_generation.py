"""Tests of rag.generation: stats and streams, the packaged-model assembly, the factory, and a contract
that every Generator backend must pass with the real packaged model (marked slow)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from contracts import GROUNDED, MAX_TOKENS, GeneratorContract
from fakes import ScriptedGenerator

from rag.config import Settings
from rag.errors import ModelUnavailableError
from rag.generation import (
    ContinuationScorer,
    GenerationStats,
    GenerationStream,
    Generator,
    HiddenStateReader,
    build_generator,
    packaged,
)
from rag.generation.packaged import PACKAGED_QWEN, PackagedGguf, packaged_gguf_path

# --- GenerationStats and GenerationStream -------------------------------------------------------------


def test_decode_speed_excludes_the_first_token() -> None:
    stats = GenerationStats(
        prompt_tokens=10, completion_tokens=11, first_token_seconds=1.0, total_seconds=3.0
    )
    assert stats.decode_tokens_per_second == pytest.approx(5.0)


@pytest.mark.parametrize(
    "stats",
    [
        GenerationStats(),
        GenerationStats(completion_tokens=1, first_token_seconds=0.5, total_seconds=0.5),
        GenerationStats(completion_tokens=5, first_token_seconds=1.0, total_seconds=1.0),
    ],
)
def test_decode_speed_is_zero_when_unmeasurable(stats: GenerationStats) -> None:
    assert stats.decode_tokens_per_second == 0.0


def test_stream_yields_pieces_and_completes_stats() -> None:
    stats = GenerationStats(prompt_tokens=3)

    def pieces() -> Iterator[str]:
        try:
            yield ""
            yield "Hello"
            yield ", world"
        finally:
            stats.completion_tokens = 2

    stream = GenerationStream(pieces(), stats)
    assert stream.stats is stats
    assert [piece for piece in stream if piece] == ["Hello", ", world"]
    assert stream.done
    assert stream.text == "Hello, world"
    assert stats.completion_tokens == 2
    assert 0.0 < stats.first_token_seconds <= stats.total_seconds
    assert list(stream) == []


def test_stream_close_stops_the_source() -> None:
    closed = []

    def pieces() -> Iterator[str]:
        try:
            yield from ["a", "b", "c"]
        finally:
            closed.append(True)

    with GenerationStream(pieces()) as stream:
        assert next(stream) == "a"
    assert closed == [True]
    assert stream.done
    assert stream.text == "a"
    assert stream.stats.total_seconds >= stream.stats.first_token_seconds


def test_stream_passes_errors_on_and_finishes() -> None:
    def pieces() -> Iterator[str]:
        yield "partial"
        raise RuntimeError("model failed")

    stream = GenerationStream(pieces())
    assert next(stream) == "partial"
    with pytest.raises(RuntimeError, match="model failed"):
        next(stream)
    assert stream.done


# --- The packaged model: assembly from part packages ----------------------------------------------------


def _fake_parts(root: Path, prefix: str, contents: list[bytes]) -> None:
    """Install importable packages `<prefix>1..N` (dashes as underscores) holding `data/partNN.bin`."""
    for number, content in enumerate(contents, start=1):
        package = root / f"{prefix.replace('-', '_')}{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(content)


CONTENTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
JOINED = b"".join(CONTENTS)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PackagedGguf:
    site = tmp_path / "site"
    _fake_parts(site, "rag-fake-part", CONTENTS)
    monkeypatch.syspath_prepend(str(site))
    return PackagedGguf(
        file_name="tiny.gguf",
        distribution_prefix="rag-fake-part",
        part_count=len(CONTENTS),
        sha256=hashlib.sha256(JOINED).hexdigest(),
        size=len(JOINED),
    )


def _leftovers(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name.endswith(".partial")]


def test_assembles_parts_in_order_and_records_the_hash(
    fake_model: PackagedGguf, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache" / "models"
    with caplog.at_level(logging.INFO, logger="rag"):
        path = packaged_gguf_path(cache, fake_model)
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == JOINED
    assert (cache / "tiny.gguf.sha256").read_text().split() == [fake_model.sha256, "tiny.gguf"]
    assert f"Assembling the packaged model from 3 parts into {path} (once)..." in caplog.text
    assert _leftovers(cache) == []


def test_a_verified_file_is_reused_without_parts_or_hashing(
    fake_model: PackagedGguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = packaged_gguf_path(tmp_path, fake_model)

    def fail(*args: object) -> None:
        raise AssertionError("should not assemble or hash again")

    monkeypatch.setattr(packaged, "_assemble", fail)
    monkeypatch.setattr(packaged, "_unrecorded_file_matches", fail)
    monkeypatch.setattr(packaged, "_part_files", fail)
    assert packaged_gguf_path(tmp_path, fake_model) == path


def test_a_right_file_without_sidecar_is_hashed_once_not_reassembled(
    fake_model: PackagedGguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tiny.gguf").write_bytes(JOINED)
    monkeypatch.setattr(packaged, "_assemble", lambda *args: pytest.fail("reassembled a right file"))
    path = packaged_gguf_path(tmp_path, fake_model)
    assert (tmp_path / "tiny.gguf.sha256").read_text().startswith(fake_model.sha256)
    assert path.read_bytes() == JOINED


@pytest.mark.parametrize("existing", [b"truncated", b"x" * len(JOINED)])
def test_a_wrong_file_is_replaced(fake_model: PackagedGguf, tmp_path: Path, existing: bytes) -> None:
    (tmp_path / "tiny.gguf").write_bytes(existing)
    (tmp_path / "tiny.gguf.sha256").write_text(f"{fake_model.sha256}  tiny.gguf\n")
    os.utime(tmp_path / "tiny.gguf.sha256", (0, 0))  # a sidecar older than the file vouches for nothing
    assert packaged_gguf_path(tmp_path, fake_model).read_bytes() == JOINED


def test_a_hash_mismatch_leaves_no_file(fake_model: PackagedGguf, tmp_path: Path) -> None:
    wrong = PackagedGguf(**{**fake_model.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelUnavailableError, match="force-reinstall"):
        packaged_gguf_path(tmp_path, wrong)
    assert list(tmp_path.glob("tiny.gguf*")) == []
    assert _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_final_name_clean(
    fake_model: PackagedGguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packaged.os, "fsync", disk_full)
    with pytest.raises(ModelUnavailableError, match="model_cache_dir"):
        packaged_gguf_path(tmp_path, fake_model)
    assert not (tmp_path / "tiny.gguf").exists()
    assert _leftovers(tmp_path) == []


def test_a_missing_part_package_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    _fake_parts(site, "rag-gap-part", [b"a", b"b"])
    monkeypatch.syspath_prepend(str(site))
    model = PackagedGguf("gap.gguf", "rag-gap-part", 3, "0" * 64, 3)
    with pytest.raises(ModelUnavailableError) as caught:
        packaged_gguf_path(tmp_path / "cache", model)
    message = str(caught.value)
    assert "rag-gap-part3" in message
    assert "bash scripts/setup.sh" in message
    assert "pip install rag-gap-part3" in message


def test_the_installed_parts_add_up_to_the_packaged_model() -> None:
    parts = packaged._part_files(PACKAGED_QWEN)
    assert len(parts) == 22
    assert sum(part.stat().st_size for part in parts) == PACKAGED_QWEN.size


# --- The factory ----------------------------------------------------------------------------------------


def test_llama_cpp_refuses_a_model_that_is_not_gguf() -> None:
    settings = Settings(generator="Qwen/Qwen2.5-0.5B-Instruct", generator_backend="llama_cpp")
    with pytest.raises(ModelUnavailableError, match="generator_backend.*transformers"):
        build_generator(settings)


@pytest.mark.parametrize("backend", ["llama_cpp", "transformers"])
def test_a_missing_gguf_file_is_reported(tmp_path: Path, backend: str) -> None:
    settings = Settings(generator=str(tmp_path / "absent.gguf"), generator_backend=backend)
    with pytest.raises(ModelUnavailableError, match="No GGUF file"):
        build_generator(settings)


def test_transformers_offline_reports_an_unknown_model(tmp_path: Path) -> None:
    settings = Settings(generator=str(tmp_path / "no-such-model"), generator_backend="transformers")
    with pytest.raises(ModelUnavailableError, match="could not load"):
        build_generator(settings)


# --- The Generator contract (tests/contracts.py): both backends with the packaged model, and the fake ---


@pytest.fixture(scope="module", params=["llama_cpp", "transformers"])
def generator(request: pytest.FixtureRequest) -> Iterator[Generator]:
    """Each backend with the packaged model, loaded once for the module (and one at a time)."""
    settings = Settings(generator_backend=request.param)
    if request.param == "llama_cpp":
        from rag.generation.llama_cpp import LlamaCppGenerator

        model = LlamaCppGenerator(
            packaged_gguf_path(settings.model_cache_dir),
            threads=settings.threads,
            context_tokens=settings.context_tokens,
        )
    else:
        from rag.generation.transformers_backend import TransformersGenerator

        path = packaged_gguf_path(settings.model_cache_dir)
        model = TransformersGenerator(
            str(path.parent), gguf_file=path.name, threads=settings.threads, allow_downloads=False
        )
    yield model


@pytest.mark.slow
class TestPackagedGenerators(GeneratorContract):
    """Both backends with the packaged model: the contract, and what a real model knows."""

    def test_answers_from_the_source(self, generator: Generator) -> None:
        stream = generator.stream(GROUNDED, max_tokens=MAX_TOKENS)
        assert "Lakeview" in "".join(stream), stream.text

    def test_scores_continuations_by_the_models_belief(self, generator: Generator) -> None:
        assert isinstance(generator, ContinuationScorer)
        right = generator.continuation_logprob(GROUNDED, "The capital of Freedonia is Lakeview", 8)
        wrong = generator.continuation_logprob(GROUNDED, "The capital of Freedonia is Paris", 8)
        assert wrong < right <= 0.0
        unanswerable = [{"role": "user", "content": GROUNDED[0]["content"].replace("capital", "population")}]
        refusal = "The source does not say."
        assert generator.continuation_logprob(unanswerable, refusal, 4) > generator.continuation_logprob(
            GROUNDED, refusal, 4
        )

    def test_reads_the_hidden_state_at_the_end_of_the_prompt_for_free(self, generator: Generator) -> None:
        if not isinstance(generator, HiddenStateReader):
            pytest.skip(f"{generator.name} does not expose hidden states")
        assert isinstance(generator, ContinuationScorer)
        before = generator.continuation_logprob(GROUNDED, "The capital of Freedonia is Lakeview", 8)
        read_while_scoring = generator.prompt_hidden_state(GROUNDED)
        other = [{"role": "user", "content": "Name a colour."}]
        generator.continuation_logprob(other, "Blue", 1)
        assert generator.prompt_hidden_state(other) != read_while_scoring
        recomputed = np.asarray(generator.prompt_hidden_state(GROUNDED))
        assert len(recomputed) == len(read_while_scoring) > 100
        # the same state, up to the rounding of another batch split of the prompt
        first = np.asarray(read_while_scoring)
        cosine = float(recomputed @ first / (np.linalg.norm(recomputed) * np.linalg.norm(first)))
        assert cosine > 0.999, cosine
        # reading the state leaves the scores (and so the answer) as they were
        again = generator.continuation_logprob(GROUNDED, "The capital of Freedonia is Lakeview", 8)
        assert again == pytest.approx(before, abs=0.05)

    def test_answers_the_same_after_scoring_a_continuation(self, generator: Generator) -> None:
        assert isinstance(generator, ContinuationScorer)
        generator.continuation_logprob(GROUNDED, "Paris is the capital", 4)
        assert "Lakeview" in "".join(generator.stream(GROUNDED, max_tokens=MAX_TOKENS))

    def test_the_answer_after_a_probe_starts_without_evaluating_again(
        self, generator: Generator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One prefill per question: the probe leaves the prompt's own last logits in place, so the stream
        samples its first token at once and writes what it writes after the prompt alone."""
        from rag.generation.llama_cpp import LlamaCppGenerator

        if not isinstance(generator, LlamaCppGenerator):
            pytest.skip("llama.cpp's cache bookkeeping")
        llama = generator._llama
        llama.n_tokens = 0
        alone = "".join(generator.stream(GROUNDED, max_tokens=MAX_TOKENS))
        probe = generator.continuation_logprob(GROUNDED, "The capital of Freedonia is Paris", 8)
        assert probe < 0.0
        evaluated: list[int] = []
        original = llama.eval

        def counted(tokens: list[int]) -> None:
            evaluated.append(len(tokens))
            original(tokens)

        monkeypatch.setattr(llama, "eval", counted)
        stream = generator.stream(GROUNDED, max_tokens=MAX_TOKENS)
        first = next(iter(stream))
        assert sum(evaluated) == 0, evaluated  # nothing evaluated before the first token
        assert first + "".join(stream) == alone

    def test_a_second_one_token_read_of_the_same_prompt_evaluates_nothing(
        self, generator: Generator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The judge reads "Yes" and then "No" after the same prompt: the second read comes from the row the
        first one evaluated, and equals what a fresh evaluation gives."""
        from rag.generation.llama_cpp import LlamaCppGenerator

        if not isinstance(generator, LlamaCppGenerator):
            pytest.skip("llama.cpp's cache bookkeeping")
        llama = generator._llama
        llama.n_tokens = 0
        yes = generator.continuation_logprob(GROUNDED, "Yes", 1)
        decoded: list[int] = []
        original = llama._ctx.decode

        def counted(batch: object) -> None:
            decoded.append(1)
            original(batch)

        monkeypatch.setattr(llama._ctx, "decode", counted)
        no = generator.continuation_logprob(GROUNDED, "No", 1)
        assert decoded == []
        assert generator.continuation_logprob(GROUNDED, "Yes", 1) == yes
        llama.n_tokens = 0  # forget the prompt: evaluated again, the same figure
        assert generator.continuation_logprob(GROUNDED, "No", 1) == pytest.approx(no, abs=0.05)
        assert decoded


class TestScriptedGenerator(GeneratorContract):
    """The test fake that tests/fakes.py gives the answering tests."""

    @pytest.fixture
    def generator(self) -> Generator:
        return ScriptedGenerator(*["The capital of Freedonia is Lakeview [1]."] * 2, "1, 2, 3, 4, 5, 6, 7, 8")


@pytest.mark.slow
def test_build_generator_gives_llama_cpp_for_the_packaged_default() -> None:
    from rag.generation.llama_cpp import LlamaCppGenerator

    generator = build_generator(Settings())
    assert isinstance(generator, LlamaCppGenerator)
    assert build_generator(Settings()) is generator
