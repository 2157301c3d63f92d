"""One Settings object: defaults < `rag.toml` < environment (`RAG_*`) < CLI flags / constructor arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PACKAGED_EMBEDDER = "packaged:all-MiniLM-L6-v2"
PACKAGED_GENERATOR = "packaged:qwen2.5-coder-1.5b-instruct-q4_k_m"


GroundingMode = Literal["flag", "strict", "off"]
AnswerMode = Literal["generative", "extractive"]


def _default_model_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


class Settings(BaseSettings):
    """Every setting of rag, each with a description; also read from `RAG_<NAME>` and `rag.toml`."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", toml_file="rag.toml", extra="ignore", validate_default=True
    )

    # Index
    index_dir: Path = Field(
        Path("index/default"),
        description="Folder of the index (catalog, FAISS file, manifest) of the default collection; its "
        "folder name is the default collection's name.",
    )
    collections_dir: Path | None = Field(
        None,
        description="Folder of the named collections, one index folder each (`<collections_dir>/<name>`), "
        "chosen per request (`collection`, `model` in /v1, `--collection`); unset: the folder that holds "
        "index_dir.",
    )

    # Parsing and chunking
    max_file_mb: float = Field(
        50.0, gt=0, description="Files larger than this many MiB are skipped at ingest."
    )
    parse_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Time one file may take to parse and chunk (in a worker process); a file that takes "
        "longer is stopped and skipped with a line naming this setting.",
    )
    max_parse_memory_mb: int = Field(
        1024,
        ge=256,
        description="Memory (address space, MiB) of each parsing worker process; a file that needs more is "
        "skipped with a line naming this setting.",
    )
    max_decompressed_mb: float = Field(
        256.0,
        gt=0,
        description="Largest unpacked size of a Word (.docx, zip) file, in MiB: a zip bomb is refused "
        "before it is unpacked.",
    )
    max_nesting_depth: int = Field(
        4096,
        ge=16,
        description="Deepest nesting of HTML elements a file may have (the tree's build time grows with "
        "the square of the depth); a deeper file is skipped.",
    )
    max_chunks_per_document: int = Field(
        100_000,
        ge=1,
        description="Most chunks one document may become (bounds the embedding work one file can cause); "
        "a document that would become more is skipped.",
    )
    parse_workers: int = Field(
        1,
        ge=1,
        description="Worker processes that parse and chunk files ahead of the embedding at ingest.",
    )
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
    embedder_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "torch",
        description="Runtime of the embedder: torch (sentence-transformers), onnx (ONNX Runtime; the model "
        "is exported locally at first use and cached under model_cache_dir/onnx) or onnx-int8 (the same "
        "with per-channel int8 weights). See README Benchmarks.",
    )
    embedder_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Arithmetic of the torch embedder's batches (ingest, evidence compression): bfloat16 "
        "runs about twice as fast where the CPU computes it natively (AVX512-BF16 or AMX), its vectors at a "
        "cosine above 0.9999 to float32's (README, ingest); auto: bfloat16 on such a CPU, else float32.",
    )
    query_embedder_backend: Literal["same", "torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="Runtime that embeds each question (one text, one thread): onnx-int8 (int8 weights) is "
        "about four times as fast as torch with the same retrieval quality on SciFact, onnx gives torch's "
        "exact vectors in about half its time (README, query latency); same: embedder_backend's. Ingest "
        "keeps embedder_backend. Falls back to embedder_backend, with a warning, where the model cannot be "
        "exported.",
    )
    allow_downloads: bool = Field(
        False, description="Let Hugging Face libraries download models named by id (off: fully offline)."
    )

    # Generator
    generator_backend: Literal["llama_cpp", "transformers", "openai"] = Field(
        "llama_cpp",
        description="Runtime of the language model: llama.cpp (fast on CPU), transformers, or openai (any "
        "OpenAI-compatible server: vLLM, llama.cpp's server, Ollama, a hosted API; key from "
        "RAG_OPENAI_API_KEY).",
    )
    generator: str = Field(
        PACKAGED_GENERATOR,
        description="Language model: the packaged Qwen2.5-Coder-1.5B GGUF, a GGUF path, a Hugging Face id "
        "or folder.",
    )
    gguf_file: str | None = Field(
        None,
        description="For the transformers backend: the GGUF file name inside `generator` (a folder or id).",
    )
    model_cache_dir: Path = Field(
        default_factory=_default_model_cache,
        description="Where the packaged GGUF model is assembled from its parts (once, verified by sha256).",
    )
    threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="CPU threads for the language model."
    )
    context_tokens: int = Field(4096, ge=512, description="Context window of the language model, in tokens.")
    passage_cache: bool = Field(
        False,
        description="llama.cpp backend: compute each passage's keys and values once (after the static "
        "instructions) and place them into later prompts by shifting their positions, so a question only "
        "evaluates its own words; placed passages do not attend to one another, an approximation of the full "
        "prompt (see evals/RESULTS-speed-cache.md). The transformers and openai backends ignore it.",
    )
    passage_cache_mb: int = Field(
        512,
        ge=1,
        description="RAM budget of the passage cache in MiB, counting every stored state and key; the least "
        "recently used passages are dropped first.",
    )
    passage_cache_recompute_tokens: int = Field(
        0,
        ge=0,
        description="With passage_cache: the last tokens of each placed passage evaluated again in place, "
        "where they attend to the passages before them (CacheBlend's idea at the passage boundaries); 0: "
        "placed as stored.",
    )
    max_answer_tokens: int = Field(320, ge=1, description="Most tokens the model may write per answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0: deterministic).")
    openai_base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        description="With generator_backend openai: the server's OpenAI API root (ending in /v1).",
    )
    openai_model: str | None = Field(
        None,
        description="With generator_backend openai: the model name the server serves; unset: the one model "
        "it lists (an error names them when it lists several).",
    )
    openai_template_gguf: str | None = Field(
        None,
        description="With generator_backend openai: a local GGUF of the served model (or the packaged "
        "model's name) whose chat template renders the prompts that token log-probabilities are read from "
        "(refusal probability, judge); unset: those are off, as /api/health and every answer say.",
    )
    openai_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="With generator_backend openai: longest wait for the server's next bytes (connecting: "
        "at most five seconds).",
    )
    openai_retries: int = Field(
        2,
        ge=0,
        description="With generator_backend openai: retries of a request that failed to connect, timed out "
        "or got 408/429/5xx before the answer started, after waits doubling from "
        "openai_retry_backoff_seconds.",
    )
    openai_retry_backoff_seconds: float = Field(
        0.5, ge=0, description="With generator_backend openai: wait before the first retry (doubling after)."
    )

    # Answering
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved and given to the model per question.")
    prompt_passage_tokens: int = Field(
        160,
        ge=0,
        description="Evidence compression: the passages given to the model are cut to the sentences nearest "
        "the question (embedder similarity plus term overlap, neighbours kept, exact document offsets kept "
        "for citations) until they hold at most this many embedder tokens in all; 0 turns it off (the full "
        "passages). The default halves the prompt and cuts the time to the first token to about a third; on "
        "SQuAD development questions it answers and cites better than the full passages (README, evidence "
        "compression).",
    )
    min_relevance: float = Field(
        0.362,
        ge=-1.0,
        le=1.0,
        description="Evidence gate: when no passage scores this cosine similarity or more, abstain without "
        "the model; -1 turns it off. Calibrated by `python evals/calibrate_gate.py` and `rag eval calibrate` "
        "(evals/RESULTS-answers.md).",
    )
    answer_mode: Literal["generative", "extractive"] = Field(
        "generative",
        description="generative: the language model writes the answer; extractive: the best supporting "
        "sentences of the passages, with citations, no language model (fast; a fallback).",
    )
    answer_style: Literal["sentence", "short"] = Field(
        "sentence",
        description="Answer in full sentences, or in the shortest phrase that answers (as SQuAD scores).",
    )
    grounding_mode: Literal["flag", "strict", "off"] = Field(
        "flag",
        description="Support check of every answer sentence against the passages it cites: flag marks "
        "unsupported sentences, strict removes them (abstaining when none remain), off skips the check.",
    )
    support_checker: Literal["evidence", "judge"] = Field(
        "evidence",
        description="The offline support check: evidence (lexical coverage and embedder alignment; fast) "
        "or judge (the generator asked whether the cited passages state the sentence, read from "
        "its Yes/No token probabilities; one prompt prefill a sentence). `support_model` overrides both.",
    )
    support_model: str | None = Field(
        None,
        description="Hugging Face NLI cross-encoder (id or path) for the support check; unset: the offline "
        "checker `support_checker` names.",
    )
    claim_checks: bool = Field(
        True,
        description="Mark a sentence unsupported (support 0, with the reason in `issues`) when it states a "
        "value (number, version, identifier, flag, path, name) that neither its cited passages nor the "
        "question state, or drops a negation or a plan of the passage it rests on; after any checker.",
    )
    attribution_min_support: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="A sentence the model left uncited, or cited with passages that do not support it, "
        "gets the passage that supports it best when the support checker scores it at least this (added, "
        "marked `attributed`); 1 turns attribution off. Calibrated by `evals/calibrate_attribution.py`.",
    )
    refusal_threshold: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Abstain when the model's own probability of replying \"The documents do not contain an "
        'answer..." (read from its token probabilities before it writes) is at least this, even where '
        "greedy decoding would answer; 1 turns it off. Calibrated by `rag eval calibrate`.",
    )
    support_threshold: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Support score from which a sentence counts as supported. Calibrated by `rag eval "
        "calibrate`.",
    )
    confidence_signals: bool = Field(
        True,
        description="Read every answer's confidence signals (retrieval scores, refusal probability, token "
        "probabilities, support, constraint coverage, the model's Yes/No judgement continued from the "
        "answer, agreement with the extractive sentence) and the calibrated `confidence` they give.",
    )
    calibrator_path: Path | None = Field(
        None,
        description="The confidence calibrator (JSON, `python evals/fit_calibrator.py`); unset: the one "
        "shipped in the package (rag/calibrator.json).",
    )
    min_confidence: float = Field(
        0.03,
        ge=0.0,
        le=1.0,
        description="Answer only when the calibrated probability that the answer is right and supported is "
        "at least this (a target: 0.5 = at least even odds of being right), else abstain; 0 turns it off. "
        "The default is the operating point chosen on SQuAD 2.0 development questions (the highest that "
        "still answers the issue's share of answerable ones); raise it to abstain more. The deciding knob "
        "beside min_relevance and refusal_threshold (evals/RESULTS-answers.md, section 6).",
    )
    recover_refusals: bool = Field(
        True,
        description="When the model says the documents do not answer but its Yes/No judgement and the "
        "extractive sentence say a passage does, answer once with that sentence, marked `recovered`.",
    )

    # Retrieval
    retrieval_mode: Literal["dense", "bm25", "hybrid"] = Field(
        "hybrid",
        description="How passages are found: embeddings (dense), BM25 (bm25) or both fused by reciprocal "
        "rank (hybrid; chosen on SciFact train, evals/RESULTS-retrieval.md).",
    )
    rrf_k: int = Field(
        10,
        ge=1,
        description="Reciprocal rank fusion constant: score = weight / (rrf_k + rank); larger flattens the "
        "rank differences. Chosen on SciFact train (evals/RESULTS-retrieval.md).",
    )
    dense_weight: float = Field(
        1.0, ge=0.0, description="Weight of the dense ranking in hybrid fusion (1: chosen on SciFact train)."
    )
    bm25_weight: float = Field(
        1.0, ge=0.0, description="Weight of the BM25 ranking in hybrid fusion (1: chosen on SciFact train)."
    )
    fusion_candidates: int = Field(
        100, ge=1, description="Chunks each ranking contributes to fusion (and to reranking and MMR)."
    )
    embed_titles: bool = Field(
        True, description="Embed each chunk with its document title in front (helps titled collections)."
    )
    mmr_lambda: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Maximal marginal relevance: 1 is pure relevance, lower trades relevance for diversity; "
        "unset: off.",
    )
    reranker: str | None = Field(
        None,
        description="Cross-encoder reranker: a Hugging Face id or local path (sentence-transformers "
        "CrossEncoder); unset: off.",
    )
    rerank_candidates: int = Field(30, ge=1, description="Fused passages the reranker rescores.")
    vector_index: Literal["auto", "flat", "ivf"] = Field(
        "auto",
        description="FAISS layout: exact flat inner product, approximate IVF, or auto (IVF from "
        "vector_index_threshold chunks on).",
    )
    vector_index_threshold: int = Field(
        200_000, ge=1, description="With vector_index auto: chunks from which the approximate IVF is used."
    )
    ivf_nprobe: int = Field(
        128,
        ge=1,
        description="IVF lists searched per query (more: better recall, slower). Chosen with "
        "`python evals/scale.py` (evals/RESULTS-retrieval.md).",
    )
    vector_store: Literal["faiss", "milvus"] = Field(
        "faiss",
        description="Where a new index keeps its vectors: FAISS files in the index folder, or a Milvus "
        "collection (`milvus_uri`; needs the `scale` extra). An existing index keeps the store it was built "
        "with.",
    )
    milvus_uri: str | None = Field(
        None,
        description="With vector_store milvus: a Milvus server or cluster (`http://host:19530`) or a Milvus "
        "Lite file (embedded, one process at a time); unset: `milvus.db` in the index folder.",
    )
    milvus_collection: str = Field(
        "rag_chunks", description="With vector_store milvus: the collection holding this index's vectors."
    )
    milvus_index_type: str = Field(
        "AUTOINDEX",
        description="With vector_store milvus: the Milvus index type of a new collection (AUTOINDEX, HNSW, "
        "IVF_FLAT, IVF_SQ8, ...); Milvus Lite always searches exactly (FLAT).",
    )
    ray_workers: int = Field(
        2,
        ge=1,
        description="`rag ingest --engine ray`: embedding actors (one model each) and, on a local Ray, its "
        "CPUs; the cluster `RAY_ADDRESS` names is used when set.",
    )

    # Server
    host: str = Field("127.0.0.1", description="Address `rag serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    upload_dir: Path = Field(
        Path("documents/uploads"),
        description="Folder where files uploaded through the API are saved and indexed.",
    )
    max_upload_mb: float = Field(20.0, gt=0, description="Largest file the API accepts for upload, in MiB.")
    max_upload_files: int = Field(20, ge=1, description="Most files in one upload request.")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API keys (env RAG_API_KEYS, comma-separated); when set, write endpoints require one.",
    )
    api_keys_for_reads: bool = Field(
        False, description="With api_keys set, require a key on every API endpoint, not only on writes."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS); empty: CORS off.",
    )
    openai_sources_in_content: bool = Field(
        True,
        description="In /v1/chat/completions, write the sources after the answer in `content` (the answer "
        "keeps its [n] markers), so clients that drop the extra `citations` field still show them.",
    )
    max_queued_answers: int = Field(
        8, ge=0, description="Answer requests that may wait for the model; beyond this the API answers 503."
    )

    # Server: request limits and accepted uploads
    max_json_mb: float = Field(
        4.0,
        gt=0,
        description="Largest request body other than an upload (questions, searches, chat completions), "
        "in MiB; a larger one is refused with 413 as soon as it passes the limit, chunked or not.",
    )
    upload_resume_attempts: int = Field(
        2,
        ge=1,
        description="Times the server indexes an accepted upload again after it stopped (crashed or was "
        "killed) while indexing it; after that the upload's job is marked failed.",
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

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


def settings_table() -> str:
    """Every setting as a Markdown table (the README's configuration section is this output)."""
    rows = ["| setting | environment | default | description |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "(machine-dependent)" if field.default_factory is not None else f"`{field.default}`"
        rows.append(f"| `{name}` | `RAG_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
