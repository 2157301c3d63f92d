"""Lexical index: BM25 over chunk texts (with their document titles), rows mapped to chunk ids.

Built with bm25s: it stores BM25 as a sparse matrix of precomputed term scores, so scoring a query
is a sum of a few sparse rows (milliseconds over a million chunks), it is actively maintained,
saves to plain numpy/JSON files, and pairs with PyStemmer for Snowball stemming. The index is
rebuilt from the catalog at every commit: rebuilding is cheap at collection sizes a CPU serves
(about a second for SciFact's 5k abstracts), and it keeps BM25 trivially in step with ingest,
prune and delete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.text import STOP_WORDS, stemmer

LEXICAL_DIR = "lexical"
_IDS_FILE = "chunk_ids.npy"
_PARAMS_FILE = "rag-lexical.json"
_STOP_WORDS = sorted(STOP_WORDS)


@lru_cache(maxsize=1)
def _bm25s():  # noqa: ANN202
    """bm25s, imported once with its logger quieted (it sets itself to DEBUG on import and would
    print "Building index from tokens" on every ingest)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased word tokens, the shared stop words removed, Snowball-stemmed."""
    bm25s = _bm25s()
    return bm25s.tokenize(
        list(texts), stopwords=_STOP_WORDS, stemmer=stemmer(), return_ids=False, show_progress=False
    )


def lexical_text(title: str, text: str) -> str:
    """What BM25 (and the embedder) read for a chunk: its document's title, then the chunk text."""
    return f"{title}\n{text}" if title and not text.startswith(title) else text


class LexicalIndex:
    """BM25 scores of every chunk for a query; row `i` is chunk `chunk_ids[i]`."""

    def __init__(self, chunk_ids: np.ndarray, bm25=None, *, k1: float = 1.2, b: float = 0.75) -> None:  # noqa: ANN001
        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self.bm25 = bm25
        self.k1, self.b = k1, b

    @classmethod
    def build(
        cls, chunk_ids: Sequence[int], texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75
    ) -> LexicalIndex:
        bm25s = _bm25s()
        if not texts:
            return cls(np.zeros(0, dtype=np.int64), None, k1=k1, b=b)
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index(tokenize(texts), show_progress=False)
        return cls(np.asarray(chunk_ids, dtype=np.int64), bm25, k1=k1, b=b)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (zeros when no query term is indexed)."""
        if self.bm25 is None:
            return np.zeros(0, dtype=np.float32)
        tokens = tokenize([query])[0]
        if not tokens:  # only stopwords or punctuation: nothing to match (bm25s fails on an empty query)
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ids and scores of the `k` best chunks with a positive score, optionally among `allowed` ids."""
        scores = self.scores(query)
        if len(scores) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if allowed is not None:
            scores = np.where(np.isin(self.chunk_ids, allowed), scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.chunk_ids[top], scores[top]

    def save(self, folder: Path) -> list[Path]:
        """Write the index into `folder`; returns the files written (for the caller to fsync)."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / _IDS_FILE, self.chunk_ids)
        params = {"k1": self.k1, "b": self.b, "empty": self.bm25 is None}
        (folder / _PARAMS_FILE).write_text(json.dumps(params))
        if self.bm25 is not None:
            self.bm25.save(str(folder), show_progress=False)
        return [path for path in folder.iterdir() if path.is_file()]

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        bm25s = _bm25s()
        params = json.loads((folder / _PARAMS_FILE).read_text())
        ids = np.load(folder / _IDS_FILE)
        bm25 = None if params["empty"] else bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        return cls(ids, bm25, k1=params["k1"], b=params["b"])
