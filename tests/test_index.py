"""Index generations: atomic commits, manifest checks, catalog and vector store kept in step."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexIncompatibleError, IndexMissingError
from rag.index import FORMAT_VERSION, Index, IndexChange, Manifest, read_current
from rag.types import Chunk, Document

DIM = 4


def manifest(embedder: str = "test-embedder") -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION, embedder=embedder, dimension=DIM, chunk_tokens=10, chunk_overlap=0
    )


def add_file(change: IndexChange, path: str, texts: list[str]) -> None:
    from rag.catalog import FileRecord

    change.catalog.put_file(FileRecord(path, f"hash-{path}-{len(texts)}", 1, 0.0))
    document = Document(id=path, source=path, title=path, text=" ".join(texts))
    change.catalog.add_document(document, path)
    chunks, offset = [], 0
    for text in texts:
        chunks.append(Chunk(doc_id=path, text=text, start=offset, end=offset + len(text)))
        offset += len(text) + 1
    ids = change.catalog.add_chunks(chunks)
    vectors = np.random.default_rng(len(path)).normal(size=(len(ids), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    change.vectors.add(np.asarray(ids), vectors)


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="rag ingest"):
        Index.open(tmp_path / "nothing")


def test_commit_makes_a_new_generation_and_removes_the_old(tmp_path: Path) -> None:
    first = Index.create(tmp_path, manifest())
    assert first.manifest.generation == 1 and len(first.vectors) == 0
    change = first.begin()
    add_file(change, "a.txt", ["one", "two"])
    change.commit()
    assert first.is_stale()
    second = Index.open(tmp_path, embedder="test-embedder", dimension=DIM)
    assert second.manifest.generation == 2
    assert second.manifest.chunks == 2 and len(second.vectors) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")) == ["gen-000002"]


def test_abort_leaves_the_live_generation_untouched(tmp_path: Path) -> None:
    index = Index.create(tmp_path, manifest())
    change = index.begin()
    add_file(change, "a.txt", ["one"])
    change.abort()
    assert read_current(tmp_path) == index.folder
    assert Index.open(tmp_path).manifest.chunks == 0


def test_removing_a_file_removes_its_vectors(tmp_path: Path) -> None:
    index = Index.create(tmp_path, manifest())
    change = index.begin()
    add_file(change, "a.txt", ["one", "two"])
    add_file(change, "b.txt", ["three"])
    change.commit()
    index = Index.open(tmp_path)
    change = index.begin()
    removed = change.catalog.remove_file("a.txt")
    assert change.vectors.remove(np.asarray(removed)) == 2
    change.commit()
    index = Index.open(tmp_path)
    assert len(index.vectors) == 1 == index.catalog.chunk_count()
    _, ids = index.vectors.search(np.ones(DIM, dtype=np.float32), 5)
    assert set(ids[0][ids[0] >= 0]) == set(index.catalog.chunk_ids())


def test_other_embedder_is_refused_with_rebuild_advice(tmp_path: Path) -> None:
    Index.create(tmp_path, manifest("model-a"))
    with pytest.raises(IndexIncompatibleError, match="Rebuild"):
        Index.open(tmp_path, embedder="model-b", dimension=DIM)


def test_embed_titles_is_recorded_and_a_mismatch_refused(tmp_path: Path) -> None:
    built = manifest()
    built.embed_titles = False
    Index.create(tmp_path, built)
    assert Index.open(tmp_path, embed_titles=False).manifest.embed_titles is False
    with pytest.raises(IndexIncompatibleError, match="embed_titles=False.*rebuild"):
        Index.open(tmp_path, embed_titles=True)
    change = Index.open(tmp_path).begin()
    change.commit()
    assert Index.open(tmp_path).manifest.embed_titles is False  # kept across generations


def test_manifest_without_embed_titles_counts_as_the_default(tmp_path: Path) -> None:
    import json

    from rag.config import Settings

    index = Index.create(tmp_path, manifest())
    path = index.folder / "manifest.json"
    data = json.loads(path.read_text())
    del data["embed_titles"]
    path.write_text(json.dumps(data))
    default = Settings.model_fields["embed_titles"].default
    assert Index.open(tmp_path, embed_titles=default).manifest.embed_titles is default
    with pytest.raises(IndexIncompatibleError, match="embed_titles"):
        Index.open(tmp_path, embed_titles=not default)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    index = Index.create(tmp_path, manifest())
    path = index.folder / "manifest.json"
    path.write_text(path.read_text().replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 999'))
    with pytest.raises(IndexIncompatibleError, match="format version 999"):
        Index.open(tmp_path)


def test_leftovers_of_a_crashed_write_are_ignored_then_cleaned(tmp_path: Path) -> None:
    index = Index.create(tmp_path, manifest())
    (tmp_path / "gen-000002.tmp-12345").mkdir()
    (tmp_path / "CURRENT.tmp-12345").write_text("gen-000002\n")
    assert Index.open(tmp_path).folder == index.folder
    change = index.begin()
    add_file(change, "a.txt", ["one"])
    change.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "gen-000002"]


def test_searches_on_threads_survive_new_generations_being_committed(tmp_path: Path) -> None:
    """Readers keep using the generation they opened while ingests make newer ones live."""
    from fakes import BagOfWordsEmbedder

    from rag.assistant import Assistant
    from rag.config import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "volcano.txt").write_text("The volcano spat lava over the ice.")
    assistant = Assistant(Settings(index_dir=tmp_path / "index"), embedder=BagOfWordsEmbedder())
    assistant.ingest([docs])
    stop = threading.Event()
    failures: list[BaseException] = []
    searches = [0]

    def search() -> None:
        while not stop.is_set():
            try:
                assert assistant.retrieve("volcano lava", 3)
                assistant.documents()
                searches[0] += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(exc)
                return

    readers = [threading.Thread(target=search) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for n in range(10):
            (docs / f"bees-{n}.txt").write_text(f"Bee {n} made honey from the flower.")
            assistant.ingest([docs])
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert not failures, failures[0]
    assert searches[0] > 0
    assert assistant.index().manifest.documents == 11


def test_a_replaced_generation_stays_readable_until_its_last_reader_lets_go(tmp_path: Path) -> None:
    index = Index.create(tmp_path, manifest())
    change = index.begin()
    add_file(change, "a.txt", ["one"])
    change.commit()
    assert not index.folder.exists() and index.is_stale()
    assert index.catalog.chunk_count() == 0 and len(index.vectors) == 0
    catalog = weakref.ref(index.catalog)
    del index
    assert catalog() is None
