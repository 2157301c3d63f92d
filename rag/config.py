"""One Settings object: defaults < `rag.toml` < environment (`RAG_*`) < CLI flags / constructor arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

PACKAGED_EMBEDDER = "packaged:all-MiniLM-L6-v2"
PACKAGED_GENERATOR = "packaged:qwen2.5-coder-1.5b-instruct-q4_k_m"


def _default_model_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


class Settings(BaseSettings):
    """Every setting of rag, each with a description; also read from `RAG_<NAME>` and `rag.toml`."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", toml_file="rag.toml", extra="ignore", validate_default=True
    )

    # Index
    index_dir: Path = Field(Path("index/default"), description="Folder of the index (catalog, FAISS file, manifest).")

    # Parsing and chunking
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this many MiB are skipped at ingest.")
    chunk_tokens: int = Field(
        200, ge=16, le=8192, description="Largest chunk, in the embedder's tokens (MiniLM reads at most 256)."
    )
    chunk_overlap: int = Field(
        32, ge=0, description="Tokens of trailing sentences repeated at the start of the next chunk."
    )

    # Embedder
    embedder: str = Field(
        PACKAGED_EMBEDDER,
        description="Sentence-transformers model: the packaged MiniLM, a Hugging Face id or a local path.",
    )
    embed_batch_size: int = Field(16, ge=1, description="Chunks per embedding batch at ingest.")
    allow_downloads: bool = Field(
        False, description="Let Hugging Face libraries download models named by id (off: fully offline)."
    )

    # Generator
    generator_backend: Literal["llama_cpp", "transformers"] = Field(
        "llama_cpp", description="Runtime of the language model: llama.cpp (fast on CPU) or transformers."
    )
    generator: str = Field(
        PACKAGED_GENERATOR,
        description="Language model: the packaged Qwen2.5-Coder-1.5B GGUF, a GGUF path, a Hugging Face id or folder.",
    )
    gguf_file: str | None = Field(
        None, description="For the transformers backend: the GGUF file name inside `generator` (a folder or id)."
    )
    model_cache_dir: Path = Field(
        default_factory=_default_model_cache,
        description="Where the packaged GGUF model is assembled from its parts (once, verified by sha256).",
    )
    threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="CPU threads for the language model."
    )
    context_tokens: int = Field(4096, ge=512, description="Context window of the language model, in tokens.")
    max_answer_tokens: int = Field(320, ge=1, description="Most tokens the model may write per answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0: deterministic).")

    # Answering
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved and given to the model per question.")
    min_relevance: float = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description="Evidence gate: when no passage scores this cosine similarity or more, abstain without the model.",
    )

    # Server
    host: str = Field("127.0.0.1", description="Address `rag serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info) -> int:  # noqa: ANN001
        size = info.data.get("chunk_tokens", 200)
        if value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_tokens ({size})")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
