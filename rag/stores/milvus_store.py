"""Milvus vector store: the chunk vectors in a Milvus collection, either Milvus Lite (a local file, embedded
in the process) or a Milvus server or cluster (`http://host:19530`).

The collection lives outside the index's generation folders, so one collection serves every generation.
A store buffers its changes and writes them at commit, in an order that keeps the live catalog's chunks
always present in Milvus:

1. `save` (before the new generation goes live) upserts the added vectors, then writes a small pointer
   file (`vectors.milvus.json`: where the collection is) into the generation folder;
2. `apply_removals` (after the new generation is live) deletes the removed ones.

A process that dies at any point leaves Milvus holding every chunk of the live catalog plus, at most,
vectors the catalog lacks (orphans: added by a change that never went live, or removed by one that did).
Readers never see an orphan (the catalog drops ids it lacks); the next writer deletes them at open
(`reconcile`, under the index's write lock). Chunks the catalog has and Milvus lacks (a collection
damaged from outside) are reported by `reconcile` so the writer can embed them again.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import IndexIncompatibleError, RagError
from rag.stores.base import VectorIndexPolicy

log = logging.getLogger("rag")

POINTER_FILE = "vectors.milvus.json"
"""The file of a generation folder that says where its vectors are (instead of `vectors.faiss`)."""
DEFAULT_LITE_FILE = "milvus.db"
"""Milvus Lite's file inside the index folder when `milvus_uri` is unset."""
_WRITE_BATCH = 2000
"""Rows per upsert or delete request (384-dim rows: about 3 MB, well under gRPC's 64 MB)."""
_ID_BATCH = 10_000
_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class MilvusLocation:
    """Where a store's collection is: a Milvus Lite file or a server URI, and the collection's name."""

    uri: str
    collection: str
    index_type: str = "AUTOINDEX"

    @property
    def is_lite(self) -> bool:
        return _is_lite(self.uri)


def milvus_client(uri: str) -> object:
    """One `MilvusClient` per URI per process (Milvus Lite opens its file once)."""
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise RagError(
                    "vector_store 'milvus' needs pymilvus (and milvus-lite for a local file): "
                    "pip install 'rag[scale]'."
                ) from exc
            if _is_lite(uri):
                if not uri.endswith(".db"):
                    raise RagError(
                        f"milvus_uri {uri!r} is neither a server (http://host:19530) nor a Milvus Lite "
                        "file, whose name must end in .db."
                    )
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                client = MilvusClient(uri=uri)
            except Exception as exc:  # pymilvus raises its own and gRPC errors
                raise RagError(f"Cannot connect to Milvus at {uri}: {exc}") from exc
            _clients[uri] = client
        return client


def close_milvus_clients() -> None:
    """Close every client this process opened (stops embedded Milvus Lite)."""
    with _clients_lock:
        for uri, client in _clients.items():
            client.close()  # type: ignore[attr-defined]
            if _is_lite(uri):  # the embedded server holds the file until released
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        _clients.clear()


def _is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


class MilvusVectorStore:
    """A `VectorStore` over a Milvus collection (`id` INT64 primary key, `vector` FLOAT_VECTOR, inner
    product), with the changes not yet saved held in memory: adds by id, and removals of stored ids."""

    def __init__(self, location: MilvusLocation, dimension: int) -> None:
        if not _COLLECTION_NAME.fullmatch(location.collection):
            raise RagError(
                f"milvus_collection {location.collection!r} is not a valid Milvus collection name "
                "(letters, digits and underscores, not starting with a digit)."
            )
        self.location = location
        self.dimension = dimension
        self.kind = f"milvus-{location.index_type.lower()}"
        self.client = milvus_client(location.uri)
        self._added: dict[int, np.ndarray] = {}
        self._removed: set[int] = set()
        self._ensure_collection()

    # Opening and saving
    @classmethod
    def load(cls, path: Path) -> MilvusVectorStore:
        """The store a generation's pointer file names."""
        data = json.loads(path.read_text())
        uri = data["uri"] or str(path.parent.parent / DEFAULT_LITE_FILE)
        location = MilvusLocation(uri, data["collection"], data.get("index_type", "AUTOINDEX"))
        return cls(location, int(data["dimension"]))

    def save(self, path: Path) -> None:
        """Upsert the added vectors and write the pointer file; removals wait for `apply_removals`."""
        if self._added:
            ids = np.fromiter(self._added, dtype=np.int64, count=len(self._added))
            for start in range(0, len(ids), _WRITE_BATCH):
                batch = ids[start : start + _WRITE_BATCH]
                rows = [{"id": int(i), "vector": self._added[int(i)].tolist()} for i in batch]
                self.client.upsert(self.location.collection, data=rows)  # type: ignore[attr-defined]
            self._added.clear()
        in_index = Path(self.location.uri) == path.parent.parent / DEFAULT_LITE_FILE
        location = {
            "uri": None if in_index else self.location.uri,  # None: Lite's file in the index folder
            "collection": self.location.collection,
            "index_type": self.location.index_type,
            "dimension": self.dimension,
        }
        path.write_text(json.dumps(location, indent=2))

    def apply_removals(self) -> None:
        """Delete the removed vectors from Milvus (once the generation without them is live)."""
        self._delete(np.fromiter(self._removed, dtype=np.int64, count=len(self._removed)))
        self._removed.clear()

    def reconcile(self, catalog_ids: np.ndarray) -> tuple[int, np.ndarray]:
        """Make Milvus match the catalog (the source of truth): delete the orphans it holds, and return
        (orphans deleted, ids of catalog chunks with no vector). Run only under the index's write lock."""
        stored = self._stored_ids()
        catalog_ids = np.asarray(catalog_ids, dtype=np.int64)
        orphans = np.setdiff1d(stored, catalog_ids)
        self._delete(orphans)
        missing = np.setdiff1d(catalog_ids, stored)
        missing = missing[~np.isin(missing, np.fromiter(self._added, dtype=np.int64))]
        return len(orphans), missing

    # Reading
    def __len__(self) -> int:
        rows = self.client.query(  # type: ignore[attr-defined]
            self.location.collection, filter="", output_fields=["count(*)"]
        )
        return int(rows[0]["count(*)"]) - len(self._removed) + len(self._added_new())

    def ids(self) -> np.ndarray:
        stored = self._stored_ids()
        kept = stored[~np.isin(stored, np.fromiter(self._removed, dtype=np.int64))]
        return np.union1d(kept, np.fromiter(self._added, dtype=np.int64)).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        result = np.zeros((len(ids), self.dimension), dtype=np.float32)
        wanted = [int(i) for i in ids if int(i) not in self._added and int(i) not in self._removed]
        found: dict[int, list[float]] = {}
        for start in range(0, len(wanted), _ID_BATCH):
            rows = self.client.get(  # type: ignore[attr-defined]
                self.location.collection, ids=wanted[start : start + _ID_BATCH], output_fields=["vector"]
            )
            found.update({int(row["id"]): row["vector"] for row in rows})
        for n, chunk_id in enumerate(ids.tolist()):
            if chunk_id in self._added:
                result[n] = self._added[chunk_id]
            elif chunk_id in found:
                result[n] = found[chunk_id]
            else:
                raise KeyError(f"no vector with id {chunk_id} in collection {self.location.collection}")
        return result

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest by inner product, among `allowed` ids when given: Milvus' search, merged with the
        vectors added since the last save."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        shape = (queries.shape[0], k)
        scores, found = np.zeros(shape, dtype=np.float32), np.full(shape, -1, dtype=np.int64)
        if allowed is not None and len(allowed) == 0:
            return scores, found
        excluded = set(self._removed) | set(self._added)
        clauses = []
        if allowed is not None:
            allowed_ids = [int(i) for i in np.unique(np.asarray(allowed, dtype=np.int64))]
            clauses.append(f"id in [{','.join(map(str, allowed_ids))}]")
        if excluded:
            clauses.append(f"id not in [{','.join(map(str, sorted(excluded)))}]")
        hits = self.client.search(  # type: ignore[attr-defined]
            self.location.collection,
            data=queries.tolist(),
            limit=k,
            filter=" and ".join(clauses),
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        candidates = [[(float(h["distance"]), int(h["id"])) for h in row] for row in hits]
        if self._added:
            added_ids = np.fromiter(self._added, dtype=np.int64)
            if allowed is not None:
                added_ids = added_ids[np.isin(added_ids, np.asarray(allowed, dtype=np.int64))]
            if len(added_ids):
                added_scores = queries @ np.vstack([self._added[int(i)] for i in added_ids]).T
                for row, row_scores in zip(candidates, added_scores):
                    row.extend(zip(row_scores.tolist(), added_ids.tolist()))
        for n, row in enumerate(candidates):
            best = sorted(row, key=lambda pair: (-pair[0], pair[1]))[:k]
            scores[n, : len(best)] = [score for score, _ in best]
            found[n, : len(best)] = [chunk_id for _, chunk_id in best]
        return scores, found

    # Changing (in memory until saved)
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0 and np.asarray(vectors).size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dimension}), got {vectors.shape}")
        for chunk_id, vector in zip(np.asarray(ids, dtype=np.int64).tolist(), vectors):
            self._added[chunk_id] = vector.copy()

    def remove(self, ids: np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if len(ids) == 0:
            return 0
        removed = 0
        stored = set(self._existing(ids).tolist())
        for chunk_id in ids.tolist():
            if self._added.pop(chunk_id, None) is not None:
                removed += 1
                if chunk_id in stored:
                    self._removed.add(chunk_id)
            elif chunk_id in stored and chunk_id not in self._removed:
                self._removed.add(chunk_id)
                removed += 1
        return removed

    def needs_rebuild(self, policy: VectorIndexPolicy) -> str | None:
        """Never: Milvus builds and maintains its own index (`milvus_index_type`)."""
        return None

    def converted(self, kind: str) -> MilvusVectorStore:
        """The same store (Milvus has one layout, its own): a copy, as the protocol asks."""
        if kind != self.kind:
            raise ValueError(f"a Milvus store has layout {self.kind}, not {kind}")
        return self.copy()

    def copy(self) -> MilvusVectorStore:
        """A store over the same collection whose unsaved changes are its own."""
        clone = MilvusVectorStore.__new__(MilvusVectorStore)
        clone.__dict__.update(self.__dict__)
        clone._added = dict(self._added)
        clone._removed = set(self._removed)
        return clone

    # Milvus
    def _ensure_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        name = self.location.collection
        if self.client.has_collection(name):  # type: ignore[attr-defined]
            fields = self.client.describe_collection(name)["fields"]  # type: ignore[attr-defined]
            dims = [int(f["params"].get("dim", 0)) for f in fields if f["name"] == "vector"]
            if dims != [self.dimension]:
                raise IndexIncompatibleError(
                    f"Milvus collection {name!r} at {self.location.uri} holds vectors of {dims or '?'} "
                    f"dimensions, not {self.dimension}: set milvus_collection to another name, or drop it."
                )
            self.client.load_collection(name)  # type: ignore[attr-defined]  # reopened: loaded for search
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        index_params = self.client.prepare_index_params()  # type: ignore[attr-defined]
        index_params.add_index(field_name="vector", index_type=self.location.index_type, metric_type="IP")
        self.client.create_collection(  # type: ignore[attr-defined]
            name, schema=schema, index_params=index_params, consistency_level="Strong"
        )

    def _stored_ids(self) -> np.ndarray:
        """Every id in the Milvus collection (saved state only)."""
        iterator = self.client.query_iterator(  # type: ignore[attr-defined]
            self.location.collection, batch_size=_ID_BATCH, filter="", output_fields=["id"]
        )
        parts: list[np.ndarray] = []
        try:
            while batch := iterator.next():
                parts.append(np.fromiter((row["id"] for row in batch), dtype=np.int64, count=len(batch)))
        finally:
            iterator.close()
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def _existing(self, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` the Milvus collection holds."""
        present: list[int] = []
        for start in range(0, len(ids), _ID_BATCH):
            batch = ids[start : start + _ID_BATCH]
            rows = self.client.query(  # type: ignore[attr-defined]
                self.location.collection,
                filter=f"id in [{','.join(map(str, batch.tolist()))}]",
                output_fields=["id"],
            )
            present.extend(int(row["id"]) for row in rows)
        return np.asarray(present, dtype=np.int64)

    def _added_new(self) -> np.ndarray:
        """Added ids that Milvus does not hold yet."""
        added = np.fromiter(self._added, dtype=np.int64, count=len(self._added))
        return np.setdiff1d(added, self._existing(added)) if len(added) else added

    def _delete(self, ids: np.ndarray) -> None:
        for start in range(0, len(ids), _WRITE_BATCH):
            batch = [int(i) for i in ids[start : start + _WRITE_BATCH]]
            self.client.delete(self.location.collection, ids=batch)  # type: ignore[attr-defined]
