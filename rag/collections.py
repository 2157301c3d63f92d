"""Named collections: one index folder each under one root, served by one process that loads each model once.

The default collection is the index `index_dir` names (its folder name is its name); the others are the
folders of `collections_dir` (unset: the folder holding `index_dir`) that hold an index.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.errors import InvalidInputError, RagError
from rag.index import read_current, read_manifest

if TYPE_CHECKING:
    from rag.assistant import Assistant

COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""What a collection name may be: a plain folder name (letters, digits, `_`, `.`, `-`), never a path."""


@dataclass(frozen=True)
class CollectionSummary:
    """A collection as `GET /api/collections` and `GET /v1/models` list it (None: it has no index yet)."""

    name: str
    default: bool
    documents: int | None
    chunks: int | None
    updated: float | None


class CollectionNotFoundError(RagError):
    """No collection of that name."""

    status_code = 404


def collections_root(settings: Settings) -> Path:
    """The folder whose subfolders are the collections."""
    return settings.collections_dir or settings.index_dir.parent


def default_collection(settings: Settings) -> str:
    return settings.index_dir.name


def check_name(name: str) -> str:
    """`name` when it is a valid collection name, else InvalidInputError saying what is allowed."""
    if not COLLECTION_NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            f"{name!r} is not a collection name: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


def collection_settings(settings: Settings, name: str) -> Settings:
    """The settings of collection `name`: its index folder, and its own upload folder inside upload_dir
    (the default collection keeps index_dir and upload_dir as they are)."""
    if name == default_collection(settings):
        return settings
    check_name(name)
    return settings.model_copy(
        update={"index_dir": collections_root(settings) / name, "upload_dir": settings.upload_dir / name}
    )


def collection_names(settings: Settings) -> list[str]:
    """The default collection, then every other folder of the root that holds an index, by name."""
    default = default_collection(settings)
    root = collections_root(settings)
    found = (
        sorted(
            entry.name
            for entry in root.iterdir()
            if entry.is_dir() and COLLECTION_NAME.fullmatch(entry.name) and read_current(entry) is not None
        )
        if root.is_dir()
        else []
    )
    return [default, *(name for name in found if name != default)]


class Collections:
    """The assistants of the collections, made on first use; each uses the default one's models."""

    def __init__(self, default: Assistant) -> None:
        self.default = default
        self.settings = default.settings
        self.default_name = default_collection(self.settings)
        self._assistants: dict[str, Assistant] = {self.default_name: default}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every collection with an index (and the default one, with or without)."""
        return collection_names(self.settings)

    def get(self, name: str | None = None, *, create: bool = False) -> Assistant:
        """The assistant of collection `name` (None: the default). An unknown name is a
        CollectionNotFoundError naming the collections, unless `create` (an upload starts a collection)."""
        name = self.default_name if name is None else check_name(name)
        with self._lock:
            assistant = self._assistants.get(name)
            if assistant is not None:
                return assistant
            if not create and name not in self.names():
                raise CollectionNotFoundError(
                    f"No collection {name!r}; the collections are: {', '.join(self.names())}. "
                    "Upload files with `collection` set, or run `rag ingest PATH --collection NAME`, to "
                    "start one."
                )
            from rag.assistant import Assistant  # here: `rag --help` need not load the model libraries

            assistant = Assistant(collection_settings(self.settings, name), models=self.default)
            self._assistants[name] = assistant
            return assistant

    def summaries(self) -> list[CollectionSummary]:
        """Every collection with what its index holds (read from its manifest; no index is loaded)."""
        summaries = []
        for name in self.names():
            index_dir = collection_settings(self.settings, name).index_dir
            try:
                manifest = read_manifest(index_dir)
            except RagError:  # no index yet, or a damaged one: listed, without counts
                summary = CollectionSummary(name, name == self.default_name, None, None, None)
            else:
                summary = CollectionSummary(
                    name, name == self.default_name, manifest.documents, manifest.chunks, manifest.updated_at
                )
            summaries.append(summary)
        return summaries

    def loaded(self) -> list[Assistant]:
        """The assistants made so far (the default one first)."""
        with self._lock:
            return list(self._assistants.values())
