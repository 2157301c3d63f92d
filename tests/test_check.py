"""`rag check`: a sound index passes; each damaged file is named with what is wrong and what to do, a
previous intact generation is offered, and `--repair` makes it live (fast: a bag-of-words embedder)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import BagOfWordsEmbedder
from typer.testing import CliRunner

from rag.api.health import health_status
from rag.api.queue import AnswerQueue
from rag.assistant import Assistant
from rag.cli import app
from rag.config import Settings
from rag.errors import IndexCorruptError
from rag.index import Index
from rag.integrity import check_index, verify_live

runner = CliRunner()


def assistant_for(index_dir: Path) -> Assistant:
    return Assistant(Settings(index_dir=index_dir), embedder=BagOfWordsEmbedder())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of two ingests: gen-000002 is live, gen-000001 (3 documents) is kept beside it."""
    root = tmp_path_factory.mktemp("check")
    docs = root / "docs"
    docs.mkdir()
    for n, word in enumerate(["volcano", "bread", "honey"]):
        (docs / f"{word}.txt").write_text(f"A note on {word} number {n}. " + f"The {word} is here. " * 400)
    assistant = assistant_for(root / "index")
    assistant.ingest([docs])
    (docs / "ice.txt").write_text("Ice floats on water. " * 50)
    assistant.ingest([docs])
    return root


@pytest.fixture()
def index_dir(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built index (and its documents) for one test to damage."""
    shutil.copytree(built, tmp_path / "root")
    return tmp_path / "root" / "index"


def check(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_a_sound_index_passes(index_dir: Path) -> None:
    code, output = check("--index", str(index_dir))
    assert code == 0, output
    assert "gen-000002 (live): intact, 4 documents" in output
    assert "gen-000001: intact, 3 documents" in output
    assert "The index is sound: gen-000002 is live (4 documents" in output
    verify_live(index_dir)


def damage_catalog_pages(path: Path) -> None:
    """Overwrite pages in the middle of the catalog (its header stays valid: opening it still works)."""
    data = bytearray(path.read_bytes())
    assert len(data) > 40_000
    data[16_384:32_768] = np.random.default_rng(1).bytes(16_384)
    path.write_bytes(bytes(data))


DAMAGES = {
    "vectors random": ("vectors.faiss", lambda p: p.write_bytes(np.random.default_rng(2).bytes(5000))),
    "vectors truncated": ("vectors.faiss", lambda p: p.write_bytes(p.read_bytes()[:100])),
    "catalog pages": ("catalog.sqlite", damage_catalog_pages),
    "manifest": ("manifest.json", lambda p: p.write_text("[]")),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_live_generation_is_named_and_rolled_back(index_dir: Path, damage: str) -> None:
    name, breaking = DAMAGES[damage]
    breaking(index_dir / "gen-000002" / name)
    code, output = check("--index", str(index_dir))
    assert code == 1, output
    assert "gen-000002 (live): DAMAGED" in output
    assert f"    {name}" in output  # the problem line names the file
    assert "Generation gen-000001 is intact (3 documents" in output and "--repair" in output
    assert "Do not delete" in output
    with pytest.raises(IndexCorruptError, match="gen-000002/.*gen-000001 beside it is intact"):
        verify_live(index_dir)

    code, output = check("--repair", "--index", str(index_dir))
    assert code == 0, output
    assert "Repaired: gen-000001 is live (3 documents" in output
    assert (index_dir / "CURRENT").read_text() == "gen-000001\n"
    assistant = assistant_for(index_dir)
    assert len(assistant.documents()) == 3 and assistant.retrieve("volcano", 2)
    # The next ingest writes over the damaged generation and keeps the one it replaced.
    (index_dir.parent / "docs" / "ice.txt").write_text("Ice is frozen water.")
    assistant.ingest([index_dir.parent / "docs"])
    assert check("--index", str(index_dir))[0] == 0
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000001", "gen-000002"]


LEXICAL_DAMAGES = {
    "ids": lambda p: (p / "chunk_ids.npy").write_bytes(b"garbage"),
    "vocabulary": lambda p: (p / "vocab.index.json").write_text("{broken"),
    "params missing": lambda p: (p / "rag-lexical.json").unlink(),
}


@pytest.mark.parametrize("damage", LEXICAL_DAMAGES)
def test_damaged_bm25_files_are_rebuilt_from_the_catalog(index_dir: Path, damage: str) -> None:
    LEXICAL_DAMAGES[damage](index_dir / "gen-000002" / "lexical")
    code, output = check("--index", str(index_dir))
    assert code == 1 and "gen-000002 (live): DAMAGED" in output and "    lexical/: is damaged: " in output
    assert "rebuilds them into a new generation (no document is lost)" in output
    code, output = check("--repair", "--index", str(index_dir))
    assert code == 0, output
    assert "Repaired: gen-000003 is live (4 documents" in output
    assistant = assistant_for(index_dir)
    assert len(assistant.documents()) == 4 and assistant.retrieve("volcano", 2)


@pytest.mark.parametrize("content", [b"", b"\x00\xff garbage", b"gen-000042\n"])
def test_a_garbled_current_is_repaired_to_the_newest_intact_generation(
    index_dir: Path, content: bytes
) -> None:
    (index_dir / "CURRENT").write_bytes(content)
    code, output = check("--index", str(index_dir))
    assert code == 1 and "CURRENT: " in output and "does not say which generation is live" in output
    assert "Generation gen-000002 is intact (4 documents" in output
    code, output = check("--repair", "--index", str(index_dir))
    assert code == 0 and "Repaired: gen-000002 is live (4 documents" in output
    assert len(assistant_for(index_dir).documents()) == 4


def test_json_report(index_dir: Path) -> None:
    (index_dir / "gen-000002" / "vectors.faiss").write_bytes(b"")
    code, output = check("--json", "--index", str(index_dir))
    report = json.loads(output)
    assert code == 1 and report["healthy"] is False and report["live"] == "gen-000002"
    assert report["fallback"] == "gen-000001"
    live = report["generations"][0]
    assert live["name"] == "gen-000002" and not live["intact"]
    assert live["problems"] == [
        "vectors.faiss: is not a readable FAISS index (it ends early: truncated or empty)"
    ]
    assert report["generations"][1]["counts"] == {"documents": 3, "chunks": 30, "vectors": 30, "lexical": 30}


def test_nothing_intact_left_says_rebuild_and_repair_refuses(index_dir: Path) -> None:
    for folder in ("gen-000001", "gen-000002"):
        (index_dir / folder / "catalog.sqlite").write_bytes(b"not a database at all" * 100)
    code, output = check("--index", str(index_dir))
    assert (
        code == 1 and "No intact generation is left" in output and "rag ingest PATH --index NEW_DIR" in output
    )
    code, output = check("--repair", "--index", str(index_dir))
    assert code == 2 and "cannot be repaired" in output


def test_chunk_ids_that_disagree_between_files_are_reported(index_dir: Path) -> None:
    live, previous = index_dir / "gen-000002", index_dir / "gen-000001"
    (live / "vectors.faiss").write_bytes((previous / "vectors.faiss").read_bytes())
    report = check_index(index_dir)
    assert not report.healthy
    assert any(p.startswith("vectors.faiss: holds 30 chunk ids") for p in report.live_generation.problems)


def test_no_index_is_exit_2(tmp_path: Path) -> None:
    code, output = check("--index", str(tmp_path / "none"))
    assert code == 2 and "No index at" in output and "rag ingest" in output


def test_health_reports_a_damaged_index_with_what_to_do(index_dir: Path) -> None:
    assistant = assistant_for(index_dir)
    assert health_status(assistant, AnswerQueue(1))["status"] == "ok"
    (index_dir / "CURRENT").write_bytes(b"")
    status = health_status(assistant, AnswerQueue(1))
    assert status["status"] == "index_damaged" and status["index"] is None
    assert "gen-000002 beside it is intact" in status["detail"]


def test_index_open_and_check_agree_on_a_sound_index(index_dir: Path) -> None:
    index = Index.open(index_dir)
    report = check_index(index_dir)
    assert report.healthy and report.live == index.folder.name
    assert report.live_generation.counts["chunks"] == index.catalog.chunk_count() == len(index.vectors)


def test_rag_serve_refuses_a_damaged_index_with_what_to_do(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    """A real `rag serve` on an index whose catalog pages are damaged (its header still opens) exits at
    start with the damaged file and the way back, before loading the models (slow: real embedder)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "volcano.txt").write_text("Mount Erebus is an active volcano in Antarctica. " * 300)
    assistant = Assistant(Settings(index_dir=tmp_path / "index"), embedder=embedder)
    assistant.ingest([docs])
    (docs / "bread.txt").write_text("Sourdough bread rises because wild yeast ferments the dough. " * 300)
    assistant.ingest([docs])
    damage_catalog_pages(tmp_path / "index" / "gen-000002" / "catalog.sqlite")
    result = subprocess.run(
        [sys.executable, "-m", "rag", "serve", "--index", str(tmp_path / "index"), "--port", "9"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Loading the models" not in result.stderr
    assert "gen-000002/catalog.sqlite: fails SQLite's integrity check" in result.stderr
    assert "gen-000001 beside it is intact" in result.stderr and "rag check --repair" in result.stderr


def test_a_catalog_damaged_while_serving_is_a_503_naming_rag_check(index_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from rag.api import create_app

    assistant = Assistant(
        Settings(index_dir=index_dir, upload_dir=index_dir.parent / "uploads"), embedder=BagOfWordsEmbedder()
    )
    client = TestClient(create_app(assistant), raise_server_exceptions=False)
    assert client.get("/api/health").json()["status"] == "ok"
    damage_catalog_pages(index_dir / "gen-000002" / "catalog.sqlite")  # pages no request has read yet
    response = client.get("/api/documents")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "IndexCorruptError" and f"rag check --index {index_dir}" in error["message"]
