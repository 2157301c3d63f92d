"""An index whose vectors live in Milvus Lite (vector_store = "milvus"): incremental ingest, replace and
delete leave no stale vector, document filters hold, and a process killed between the catalog write and
the Milvus write leaves an index that answers only from its catalog and is reconciled by the next writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fakes import BagOfWordsEmbedder

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rag.assistant import Assistant  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.integrity import check_index  # noqa: E402
from rag.retrieval import RetrievalFilter  # noqa: E402
from rag.stores import MilvusVectorStore, close_milvus_clients  # noqa: E402
from rag.stores.milvus_store import POINTER_FILE  # noqa: E402


@pytest.fixture(autouse=True)
def closed_clients() -> Iterator[None]:
    """Each test ends with Milvus Lite closed (a killed writer's file is then opened afresh)."""
    yield
    close_milvus_clients()


def write_notes(folder: Path, count: int, start: int = 0, topic: str = "volcano lava") -> None:
    folder.mkdir(exist_ok=True)
    for n in range(start, start + count):
        (folder / f"note{n:02d}.txt").write_text(f"Note {n} about {topic}.\n\n" + f"The {topic} {n}. " * 30)


def milvus_assistant(index_dir: Path) -> Assistant:
    settings = Settings(index_dir=index_dir, vector_store="milvus", chunk_tokens=40, chunk_overlap=0)
    return Assistant(settings, embedder=BagOfWordsEmbedder())


def stored_ids(index: Index) -> list[int]:
    assert isinstance(index.vectors, MilvusVectorStore)
    return sorted(index.vectors.ids().tolist())


def test_ingest_replace_and_delete_leave_no_stale_vectors(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 3)
    assistant = milvus_assistant(tmp_path / "index")
    report = assistant.ingest([docs])
    assert len(report.added) == 3 and (tmp_path / "index" / "milvus.db").exists()
    index = assistant.index()
    assert index.manifest.vector_store == "milvus" and index.vectors.kind.startswith("milvus")
    assert stored_ids(index) == index.catalog.chunk_ids() and len(index.catalog.chunk_ids()) > 3

    (docs / "note01.txt").write_text("Note 1 now speaks of bread and yeast.")
    write_notes(docs, 1, start=3, topic="bee honey")
    report = assistant.ingest([docs])
    assert len(report.updated) == 1 and len(report.added) == 1 and len(report.unchanged) == 2
    index = assistant.index()
    assert stored_ids(index) == index.catalog.chunk_ids()
    passages = assistant.retrieve("bread yeast", 3)
    assert passages[0].chunk.doc_id.endswith("note01.txt") and "bread" in passages[0].chunk.text

    assistant.remove_documents([passages[0].chunk.doc_id])
    index = assistant.index()
    assert stored_ids(index) == index.catalog.chunk_ids()
    assert all(not p.chunk.doc_id.endswith("note01.txt") for p in assistant.retrieve("bread yeast", 10))


def test_a_document_filter_restricts_the_milvus_search(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 2, topic="volcano lava")
    write_notes(docs, 1, start=2, topic="bee honey")
    assistant = milvus_assistant(tmp_path / "index")
    assistant.ingest([docs])
    only = assistant.index().catalog.documents()[0].id
    passages = assistant.retrieve("bee honey", 5, RetrievalFilter(doc_ids=(only,)))
    assert passages and {p.chunk.doc_id for p in passages} == {only}


def test_vectors_lost_from_milvus_are_embedded_again_by_the_next_ingest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 2)
    assistant = milvus_assistant(tmp_path / "index")
    assistant.ingest([docs])
    index = assistant.index()
    lost = np.asarray(index.catalog.chunk_ids()[:3], dtype=np.int64)
    expected = index.vectors.vectors(lost)
    store = index.vectors
    store.client.delete(store.location.collection, ids=lost.tolist())  # damage from outside
    write_notes(docs, 1, start=2, topic="ice")
    assistant.ingest([docs])
    index = assistant.index()
    assert stored_ids(index) == index.catalog.chunk_ids()
    assert np.allclose(index.vectors.vectors(lost), expected, atol=1e-6)


def test_rag_check_calls_a_milvus_index_sound_and_notes_what_the_next_ingest_reconciles(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 2)
    assistant = milvus_assistant(tmp_path / "index")
    assistant.ingest([docs])
    (docs / "note01.txt").write_text("Note 1 now speaks of bread and yeast.")
    assistant.ingest([docs])  # a second generation; the first's removed vectors are gone from Milvus
    check = check_index(tmp_path / "index")
    assert check.healthy, check.as_dict()
    live, older = check.generations
    assert live.folder.name == check.live and not live.notes and live.intact
    assert older.intact and any("no vector in Milvus" in note for note in older.notes)

    index = assistant.index()
    store = index.vectors
    assert isinstance(store, MilvusVectorStore)
    orphan = {"id": 10**9, "vector": [1.0] + [0.0] * (store.dimension - 1)}
    store.client.upsert(store.location.collection, data=[orphan])  # a commit that never went live
    check = check_index(tmp_path / "index")
    assert check.healthy
    assert any("1 vector(s) that catalog.sqlite lacks" in note for note in check.live_generation.notes)

    pointer = index.folder / POINTER_FILE
    pointer.write_text(pointer.read_text().replace(f'"dimension": {store.dimension}', '"dimension": 3'))
    check = check_index(tmp_path / "index")
    assert not check.healthy
    assert any(p.startswith(f"{POINTER_FILE}:") and "dimension" in p for p in check.live_generation.problems)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from fakes import BagOfWordsEmbedder
    from rag.assistant import Assistant
    from rag.config import Settings
    settings = Settings(index_dir=Path({index!r}), vector_store="milvus", chunk_tokens=40, chunk_overlap=0)
    Assistant(settings, embedder=BagOfWordsEmbedder()).ingest([Path({docs!r})])
    """
)


def killed_writer(docs: Path, index_dir: Path, point: str) -> int:
    """Run an ingest in another process, killed (SIGKILL) at the commit's fault point `point`."""
    script = WRITER.format(tests=str(Path(__file__).parent), index=str(index_dir), docs=str(docs))
    env = {**os.environ, "RAG_FAULT_INJECT": point}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    return done.returncode


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before_vectors", "before_pointer", "before_cleanup"])
def test_a_writer_killed_mid_commit_leaves_an_index_the_next_writer_reconciles(
    tmp_path: Path, point: str
) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 3)
    index_dir = tmp_path / "index"
    assistant = milvus_assistant(index_dir)
    assistant.ingest([docs])
    before = assistant.index().catalog.chunk_ids()
    close_milvus_clients()  # Milvus Lite: one process opens the file at a time

    (docs / "note00.txt").write_text("Note 0 now speaks of bread and yeast.")  # removes its old chunks
    write_notes(docs, 2, start=3, topic="bee honey")  # adds chunks
    assert killed_writer(docs, index_dir, point) == -9

    reader = milvus_assistant(index_dir)
    catalog_ids = reader.index().catalog.chunk_ids()
    assert catalog_ids == before if point != "before_cleanup" else catalog_ids != before
    found = [p.chunk.id for p in reader.retrieve("bee honey bread volcano", 50)]
    assert found and set(found) <= set(catalog_ids), "a reader never answers from an orphan vector"
    assert set(catalog_ids) <= set(stored_ids(reader.index())), "every live chunk keeps its vector"

    report = reader.ingest([docs])
    index = reader.index()
    assert stored_ids(index) == index.catalog.chunk_ids(), "the next writer deleted the orphans"
    assert report.failed == [] and len(index.catalog.documents()) == 5
