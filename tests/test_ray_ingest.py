"""`rag ingest --engine ray` on a local Ray (2 CPUs): the same chunks (ids, offsets), vectors (within float
tolerance) and per-file report as the in-process Ingestor, on a small corpus with a bad file; and the
scale-out path end to end: Ray into Milvus Lite, answered with citations through the OpenAI-compatible
backend (a real llama-cpp-python server on the packaged GGUF, conftest's server_url)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from rag.assistant import Assistant  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.ray_ingest import RayIngestor  # noqa: E402
from rag.stores import MilvusVectorStore, close_milvus_clients  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module, small: 2 CPUs, a 128 MiB object store, no dashboard."""
    ray.init(
        num_cpus=2,
        object_store_memory=128 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def write_corpus(folder: Path) -> Path:
    folder.mkdir()
    (folder / "volcano.md").write_text(
        "# Volcanoes\n\nMount Etna is an active volcano in Sicily. It erupts often.\n\n"
        "## Lava\n\nBasaltic lava flows from Etna reached the sea in 1669.\n"
    )
    (folder / "bread.txt").write_text("Rye bread is dense. Sourdough needs a starter.\n" * 40)
    (folder / "bees.html").write_text(
        "<html><head><title>Bees</title></head><body><h1>Honey bees</h1>"
        "<p>Bees make honey from nectar.</p><p>A hive holds one queen.</p></body></html>"
    )
    (folder / "notes.jsonl").write_text(
        '{"id": "n1", "title": "Tides", "text": "The moon pulls the tides."}\n'
        '{"id": "n2", "title": "Ice", "text": "Glaciers carve valleys slowly."}\n'
    )
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02 not text \x00" * 10)
    return folder


def chunks_of(index: Index) -> list[tuple[int, str, int, int, str]]:
    rows = index.catalog.db.execute("SELECT id, doc_id, start, end, text FROM chunks ORDER BY id")
    return [tuple(row) for row in rows]


def test_ray_ingest_matches_the_in_process_ingest(local_ray: None, embedder, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    local = Assistant(Settings(index_dir=tmp_path / "local"), embedder=embedder)
    expected = local.ingest([corpus])
    # The Ray actors load their own embedder from these settings: the fixture's arithmetic, float32.
    remote = Assistant(Settings(index_dir=tmp_path / "ray", embedder_precision="float32"), embedder=embedder)
    ray_ingestor = RayIngestor(
        remote.settings,
        embedder=embedder,
        chunker=remote.chunker,
        vector_policy=remote.vector_policy,
        live_index=remote.index,
        workers=2,
    )
    seen: dict[str, int] = {}

    def count(kind: str, n: int) -> None:
        seen[kind] = seen.get(kind, 0) + n

    report = ray_ingestor.ingest(
        [corpus], progress=lambda kind, n: seen.update({kind: seen.get(kind, 0) + n})
    )

    assert sorted(report.added) == sorted(expected.added) and len(report.added) == 4
    assert sorted((f.path, f.reason) for f in report.failed) == sorted(
        (f.path, f.reason) for f in expected.failed
    )
    assert {Path(f.path).name for f in report.failed} == {"empty.txt", "binary.txt"}
    assert report.chunks_added == expected.chunks_added > 4
    assert seen == {"files": 6, "chunks": report.chunks_added, "embedded": report.chunks_added}

    local_chunks, ray_chunks = chunks_of(local.index()), chunks_of(remote.index())
    assert ray_chunks == local_chunks
    ids = np.asarray([row[0] for row in local_chunks], dtype=np.int64)
    assert np.allclose(remote.index().vectors.vectors(ids), local.index().vectors.vectors(ids), atol=1e-5)

    (corpus / "bread.txt").write_text("Rye bread is dense.\n")
    again, again_expected = ray_ingestor.ingest([corpus]), local.ingest([corpus])
    assert again.updated == again_expected.updated and len(again.updated) == 1
    assert len(again.unchanged) == 3 and again.chunks_added == again_expected.chunks_added == 1
    assert chunks_of(remote.index()) == chunks_of(local.index()), "the changed file replaced, nothing stale"
    assert len(remote.index().vectors) == remote.index().catalog.chunk_count()


def test_ray_into_milvus_lite_answered_with_citations_through_the_openai_backend(
    local_ray: None,
    server_url: str,
    embedder,
    tmp_path: Path,
) -> None:
    pytest.importorskip("pymilvus")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "orchard.txt").write_text(
        "The Maple Hill orchard grows forty varieties of apple. "
        "Its oldest tree was planted in 1871 by Eliza Thornbury.\n"
    )
    (docs / "harbour.md").write_text("# Port Vell\n\nThe harbour lighthouse is painted green and white.\n")
    settings = Settings(
        index_dir=tmp_path / "index",
        vector_store="milvus",
        generator_backend="openai",
        openai_base_url=server_url,
        max_answer_tokens=60,
    )
    assistant = Assistant(settings, embedder=embedder)
    try:
        report = RayIngestor.for_assistant(assistant, workers=2).ingest([docs])
        assert len(report.added) == 2 and report.failed == []
        index = assistant.index()
        assert isinstance(index.vectors, MilvusVectorStore)
        assert sorted(index.vectors.ids().tolist()) == index.catalog.chunk_ids()
        answer = assistant.ask("Who planted the oldest tree of the Maple Hill orchard?", k=2)
        assert not answer.abstained and "Thornbury" in answer.text, answer.text
        cited = [c for c in answer.citations if Path(c.document).name == "orchard.txt"]
        assert cited and "Thornbury" in cited[0].quote
    finally:
        close_milvus_clients()
