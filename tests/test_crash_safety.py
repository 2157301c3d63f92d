"""A real `rag ingest` killed with SIGKILL at several points leaves a loadable index, old or new."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.index import Index

pytestmark = pytest.mark.slow

RAG = [sys.executable, "-m", "rag"]


def run_ingest(folder: Path, index: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*RAG, "ingest", str(folder), "--index", str(index)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def state(index_dir: Path) -> frozenset[tuple[str, str]]:
    """The (document, content hash) pairs of the live index, after checking catalog and vectors agree."""
    index = Index.open(index_dir)
    try:
        chunk_ids = index.catalog.chunk_ids()
        assert len(index.vectors) == len(chunk_ids) == index.manifest.chunks
        if chunk_ids:
            _, found = index.vectors.search(
                np.ones(index.vectors.dimension, dtype=np.float32), len(chunk_ids)
            )
            assert set(found[0].tolist()) == set(chunk_ids)
        return frozenset((d.id, index.catalog.document(d.id).content_hash) for d in index.catalog.documents())
    finally:
        index.close()


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, frozenset, frozenset]:
    """A corpus, its index in state `old`, and the `new` state a second ingest would reach."""
    root = tmp_path_factory.mktemp("crash")
    folder = root / "docs"
    folder.mkdir()
    for i in range(24):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i}. " + f"Facts about topic {i}. " * 24)
    base = root / "base-index"
    assert run_ingest(folder, base).wait() == 0
    old = state(base)
    for i in range(24, 60):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i}. " + f"More facts about subject {i}. " * 24)
    (folder / "note00.txt").write_text("Note 0 was rewritten entirely.")
    reference = root / "reference-index"
    subprocess.run(["cp", "-r", str(base), str(reference)], check=True)
    assert run_ingest(folder, reference).wait() == 0
    new = state(reference)
    assert old != new
    return folder, base, old, new


def fresh_copy(base: Path, target: Path) -> Path:
    subprocess.run(["cp", "-r", str(base), str(target)], check=True)
    return target


@pytest.mark.parametrize(
    "point", ["before_vectors", "before_manifest", "before_rename", "before_pointer", "before_cleanup"]
)
def test_kill_inside_commit(states, tmp_path: Path, point: str) -> None:
    folder, base, old, new = states
    index = fresh_copy(base, tmp_path / "index")
    process = run_ingest(folder, index, {"RAG_FAULT_INJECT": point})
    assert process.wait() == -signal.SIGKILL
    expected = new if point == "before_cleanup" else old
    assert state(index) == expected
    # The next ingest recovers and reaches the new state.
    assert run_ingest(folder, index).wait() == 0
    assert state(index) == new


@pytest.mark.parametrize("delay", [0.5, 3.0, 5.0, 7.0])
def test_kill_at_any_moment(states, tmp_path: Path, delay: float) -> None:
    folder, base, old, new = states
    index = fresh_copy(base, tmp_path / "index")
    process = run_ingest(folder, index)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state(index) in (old, new)
