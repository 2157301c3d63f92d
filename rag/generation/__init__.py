"""Language models behind one `Generator` protocol, and the factory that builds the one `Settings` names.

`settings.generator` is the packaged model, a `.gguf` file, or a Hugging Face id / folder;
`settings.generator_backend` picks the runtime: in-process (llama.cpp, transformers) or an OpenAI-compatible
server (`openai_*` settings, the key from RAG_OPENAI_API_KEY). Models load once per process and are shared.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from rag.config import PACKAGED_GENERATOR, Settings
from rag.errors import ModelUnavailableError
from rag.generation.base import (
    ContinuationScorer,
    GenerationStats,
    GenerationStream,
    Generator,
    HiddenStateReader,
)
from rag.generation.packaged import packaged_gguf_path

__all__ = [
    "ContinuationScorer",
    "GenerationStats",
    "GenerationStream",
    "Generator",
    "HiddenStateReader",
    "build_generator",
]


def build_generator(settings: Settings) -> Generator:
    """The generator `settings` describe, loaded on first request and reused for the same settings after."""
    if settings.generator_backend == "openai":
        return _connect_openai(
            settings.openai_base_url.rstrip("/"),
            settings.openai_model,
            _template_gguf(settings),
            os.environ.get("RAG_OPENAI_API_KEY") or None,
            settings.openai_timeout_seconds,
            settings.openai_retries,
            settings.openai_retry_backoff_seconds,
        )
    if settings.generator == PACKAGED_GENERATOR:
        model_path: Path | None = packaged_gguf_path(settings.model_cache_dir)
    elif settings.generator.lower().endswith(".gguf"):
        model_path = Path(settings.generator).expanduser()
        if not model_path.is_file():
            raise ModelUnavailableError(
                f"No GGUF file at {model_path}: fix `generator` (RAG_GENERATOR), or leave it at "
                f"{PACKAGED_GENERATOR!r} for the packaged model."
            )
    elif settings.gguf_file and Path(settings.generator).expanduser().is_dir():
        model_path = Path(settings.generator).expanduser() / settings.gguf_file
        if not model_path.is_file():
            raise ModelUnavailableError(f"No GGUF file {settings.gguf_file!r} in {settings.generator}.")
    else:
        model_path = None

    if settings.generator_backend == "llama_cpp":
        if model_path is None:
            raise ModelUnavailableError(
                f"The llama_cpp backend runs GGUF files only, and {settings.generator!r} is not one: point "
                "`generator` at a .gguf file, or set `generator_backend` to 'transformers' "
                "(RAG_GENERATOR_BACKEND=transformers) to run a Hugging Face model."
            )
        cache_mb = settings.passage_cache_mb if settings.passage_cache else 0
        return _load_llama_cpp(
            model_path.resolve(),
            settings.threads,
            settings.context_tokens,
            cache_mb,
            settings.passage_cache_recompute_tokens,
        )
    if model_path is not None:
        return _load_transformers(
            str(model_path.resolve().parent), model_path.name, settings.threads, settings.allow_downloads
        )
    return _load_transformers(
        settings.generator, settings.gguf_file, settings.threads, settings.allow_downloads
    )


@functools.lru_cache(maxsize=2)
def _load_llama_cpp(
    model_path: Path, threads: int, context_tokens: int, passage_cache_mb: int = 0, recompute_tokens: int = 0
) -> Generator:
    """The llama.cpp generator; with `passage_cache_mb`, a passage KV cache of that budget (0: none) that
    evaluates again the last `recompute_tokens` of each placed passage."""
    try:
        from rag.generation.llama_cpp import LlamaCppGenerator
        from rag.generation.passage_cache import PassageCache
    except ImportError as error:
        raise ModelUnavailableError(
            f"The llama_cpp backend needs llama-cpp-python ({error}): run `bash scripts/setup.sh` "
            "(or `pip install llama-cpp-python`), or set `generator_backend` to 'transformers'."
        ) from error
    cache = None
    if passage_cache_mb:
        from rag.grounding import passage_spans

        cache = PassageCache(str(model_path), passage_cache_mb * 2**20, passage_spans, recompute_tokens)
    return LlamaCppGenerator(model_path, threads=threads, context_tokens=context_tokens, passage_cache=cache)


@functools.lru_cache(maxsize=2)
def _load_transformers(model: str, gguf_file: str | None, threads: int, allow_downloads: bool) -> Generator:
    try:
        from rag.generation.transformers_backend import TransformersGenerator
    except ImportError as error:
        raise ModelUnavailableError(
            f"The transformers backend needs torch, transformers and gguf ({error}): run "
            "`bash scripts/setup.sh`, or set `generator_backend` to 'llama_cpp'."
        ) from error
    return TransformersGenerator(model, gguf_file=gguf_file, threads=threads, allow_downloads=allow_downloads)


def _template_gguf(settings: Settings) -> Path | None:
    """The local GGUF whose chat template renders prompts for an OpenAI-compatible server's token scores."""
    name = settings.openai_template_gguf
    if not name:
        return None
    if name == PACKAGED_GENERATOR:
        return packaged_gguf_path(settings.model_cache_dir)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelUnavailableError(
            f"No GGUF file at {path}: fix `openai_template_gguf` (RAG_OPENAI_TEMPLATE_GGUF), or unset it "
            "(token scores then stay off)."
        )
    return path


@functools.lru_cache(maxsize=4)
def _connect_openai(
    base_url: str,
    model: str | None,
    template_gguf: Path | None,
    api_key: str | None,
    timeout_seconds: float,
    retries: int,
    retry_backoff_seconds: float,
) -> Generator:
    from rag.generation.openai_http import ServerOptions, connect

    options = ServerOptions(
        base_url,
        api_key=api_key,
        timeout_seconds=timeout_seconds,
        retries=retries,
        retry_backoff_seconds=retry_backoff_seconds,
    )
    return connect(options, model, template_gguf)
