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
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")) == [
        "gen-000001",
        "gen-000002",
    ]
    second.begin().commit()
    # The generation replaced is kept beside the live one (to roll back to); older ones are removed.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")) == [
        "gen-000002",
        "gen-000003",
    ]


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "gen-000001", "gen-000002"]


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
    Index.open(tmp_path).begin().commit()  # the generation after next removes the reader's folder
    assert not index.folder.exists() and index.is_stale()
    assert index.catalog.chunk_count() == 0 and len(index.vectors) == 0
    catalog = weakref.ref(index.catalog)
    del index
    assert catalog() is None


# A damaged index: each file broken in turn gives one IndexCorruptError that names the file, what is
# wrong and what to do; with an intact generation beside it, the advice is to make that one live.


def two_generations(index_dir: Path) -> Index:
    """An index whose live generation (gen-000003) replaced gen-000002, which is kept beside it."""
    index = Index.create(index_dir, manifest())
    for n in range(2):
        change = Index.open(index_dir).begin()
        add_file(change, f"f{n}.txt", [f"text {n} one", f"text {n} two"])
        change.commit()
    live = Index.open(index_dir)
    assert live.folder.name == "gen-000003" and (index_dir / "gen-000002").is_dir()
    assert not index.folder.exists()
    return live


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def randomize(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(max(path.stat().st_size, 4096)))


def overwrite_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = np.random.default_rng(3).bytes(100)
    path.write_bytes(bytes(data))


DAMAGES = {
    "vectors truncated": ("vectors.faiss", truncate),
    "vectors random": ("vectors.faiss", randomize),
    "vectors empty": ("vectors.faiss", lambda p: p.write_bytes(b"")),
    "vectors missing": ("vectors.faiss", lambda p: p.unlink()),
    "catalog random": ("catalog.sqlite", randomize),
    "catalog header": ("catalog.sqlite", overwrite_header),
    "catalog empty": ("catalog.sqlite", lambda p: p.write_bytes(b"")),
    "manifest garbled": ("manifest.json", lambda p: p.write_bytes(b"\x00{not json")),
    "manifest empty object": ("manifest.json", lambda p: p.write_text("{}")),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_file_names_itself_and_offers_the_intact_generation(tmp_path: Path, damage: str) -> None:
    from rag.errors import IndexCorruptError

    live = two_generations(tmp_path)
    live.close()
    name, breaking = DAMAGES[damage]
    breaking(live.folder / name)
    with pytest.raises(IndexCorruptError) as caught:
        Index.open(tmp_path, embedder="test-embedder", dimension=DIM)
    message = str(caught.value)
    assert f"gen-000003/{name}" in message
    assert "gen-000002 beside it is intact" in message and "rag check --repair" in message
    assert "Do not delete" in message and "Traceback" not in message


def test_a_damaged_file_without_an_intact_generation_says_rebuild(tmp_path: Path) -> None:
    from rag.errors import IndexCorruptError

    index = Index.create(tmp_path, manifest())
    index.close()
    randomize(index.folder / "vectors.faiss")
    with pytest.raises(IndexCorruptError, match=r"gen-000001/vectors.faiss is not a readable FAISS index"):
        Index.open(tmp_path)
    with pytest.raises(IndexCorruptError, match=r"No intact generation.*rag ingest PATH --index NEW_DIR"):
        Index.open(tmp_path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"\n", "is empty"),
        (np.random.default_rng(5).bytes(64), "do not name a generation"),
        (b"gen-000099\n", "names gen-000099, which does not exist"),
        (b"../../etc\n", "do not name a generation"),
    ],
    ids=["empty", "newline", "random", "missing-generation", "path"],
)
def test_a_garbled_current_says_the_generation_is_intact_not_delete(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    from rag.errors import IndexCorruptError

    two_generations(tmp_path)
    (tmp_path / "CURRENT").write_bytes(content)
    with pytest.raises(IndexCorruptError) as caught:
        Index.open(tmp_path)
    message = str(caught.value)
    assert "its CURRENT file" in message and problem in message
    assert "gen-000003 beside it is intact (2 documents, 4 chunks)" in message
    assert "rag check --repair" in message and "Do not delete" in message
    assert "remove" not in message.lower()


def test_damaged_lexical_files_name_the_file(tmp_path: Path) -> None:
    from rag.errors import IndexCorruptError

    live = two_generations(tmp_path)
    (live.folder / "lexical" / "chunk_ids.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(
        IndexCorruptError, match=r"gen-000003/lexical is damaged: chunk_ids.npy cannot be read"
    ):
        live.lexical  # noqa: B018
    other = Index.open(tmp_path)
    (other.folder / "lexical" / "chunk_ids.npy").unlink()
    with pytest.raises(IndexCorruptError, match="chunk_ids.npy is missing.*gen-000002 beside it is intact"):
        other.lexical  # noqa: B018


def test_a_catalog_that_disagrees_with_its_manifest_is_refused(tmp_path: Path) -> None:
    from rag.errors import IndexCorruptError

    live = two_generations(tmp_path)
    live.close()
    previous = tmp_path / "gen-000002" / "catalog.sqlite"
    (live.folder / "catalog.sqlite").write_bytes(previous.read_bytes())
    with pytest.raises(IndexCorruptError, match=r"catalog.sqlite holds 2 chunks, but manifest.json says 4"):
        Index.open(tmp_path)


def test_an_ingest_refuses_a_garbled_current_instead_of_starting_over(tmp_path: Path) -> None:
    from fakes import BagOfWordsEmbedder

    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.errors import IndexCorruptError

    (tmp_path / "bread.txt").write_text("Bread rises because yeast ferments.")
    assistant = Assistant(Settings(index_dir=tmp_path / "index"), embedder=BagOfWordsEmbedder())
    assistant.ingest([tmp_path / "bread.txt"])
    (tmp_path / "index" / "CURRENT").write_bytes(b"")
    (tmp_path / "honey.txt").write_text("Bees make honey.")
    fresh = Assistant(Settings(index_dir=tmp_path / "index"), embedder=BagOfWordsEmbedder())
    with pytest.raises(IndexCorruptError, match="gen-000001 beside it is intact"):
        fresh.ingest([tmp_path / "honey.txt"])
    assert (tmp_path / "index" / "gen-000001" / "catalog.sqlite").is_file()
