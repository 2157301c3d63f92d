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

from rag.errors import IndexCorruptError
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
        """The index saved in `folder`: OSError when the folder is absent (an index written before BM25),
        IndexCorruptError naming the damaged file when a file in it is missing or cannot be read."""
        if not folder.is_dir():
            raise FileNotFoundError(f"no lexical index at {folder}")
        try:
            params = json.loads((folder / _PARAMS_FILE).read_bytes())
            ids = np.load(folder / _IDS_FILE, allow_pickle=False)
            if ids.ndim != 1 or ids.dtype.kind not in "iu":
                raise ValueError(f"{_IDS_FILE} holds a {ids.dtype} array of shape {ids.shape}, not chunk ids")
            bm25 = None
            if not params["empty"]:
                bm25 = _bm25s().BM25.load(str(folder), show_progress=False, verbosity=0)
                rows = int(bm25.scores["num_docs"])
                if rows != len(ids):
                    raise ValueError(f"the BM25 matrix has {rows} rows but {_IDS_FILE} has {len(ids)} ids")
            return cls(ids, bm25, k1=float(params["k1"]), b=float(params["b"]))
        except Exception as exc:  # noqa: BLE001 - bm25s, numpy and json each fail their own way on damaged files
            if not folder.is_dir():  # removed by a newer generation's commit while loading
                raise FileNotFoundError(f"no lexical index at {folder}") from exc
            raise IndexCorruptError(f"is damaged: {damaged_lexical_file(folder) or exc}") from exc


def damaged_lexical_file(folder: Path) -> str | None:
    """'FILE: what is wrong' for the first file of a saved lexical index that cannot be read, or None."""
    for name in (_PARAMS_FILE, _IDS_FILE):
        if not (folder / name).is_file():
            return f"{name} is missing"
    for path in sorted(folder.iterdir()):
        try:
            if path.suffix == ".json":
                json.loads(path.read_bytes())
            elif path.suffix == ".npy":
                np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any failure to read the file is the finding
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return f"{path.name} cannot be read ({reason})"
    return None
