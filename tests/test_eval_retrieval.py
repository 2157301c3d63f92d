"""The retrieval benchmark end to end on a reduced SciFact, and its dataset loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.evaluation.retrieval import load_beir, load_squad, parse_articles, run_benchmark, write_report

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "scifact_beir"
SQUAD = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "squad_v1.1"


def reduced_scifact(target: Path, queries: int = 50, others: int = 300) -> Path:
    """The first `queries` test queries, the documents they need and `others` more, in the BEIR layout."""
    full = load_beir(SCIFACT, "test").limited(queries)
    needed = {doc for judged in full.qrels.values() for doc in judged}
    extra = [doc for doc in full.corpus if doc not in needed][:others]
    (target / "qrels").mkdir(parents=True)
    with open(target / "corpus.jsonl", "w") as handle:
        for doc in [*needed, *extra]:
            title, text = full.corpus[doc]
            handle.write(json.dumps({"_id": doc, "title": title, "text": text}) + "\n")
    with open(target / "queries.jsonl", "w") as handle:
        for query_id, text in full.queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    with open(target / "qrels" / "test.tsv", "w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, judged in full.qrels.items():
            for doc, gain in judged.items():
                handle.write(f"{query_id}\t{doc}\t{gain}\n")
    return target


def test_parse_articles() -> None:
    assert parse_articles("0:32") == slice(0, 32)
    assert parse_articles("40:") == slice(40, None)
    assert parse_articles("3") == slice(3, 4)


@pytest.mark.skipif(not SQUAD.is_dir(), reason="needs ../shared/datasets/squad_v1.1")
def test_squad_paragraphs_become_documents() -> None:
    dataset = load_squad(SQUAD, "0:2")
    assert all(len(judged) == 1 for judged in dataset.qrels.values())
    assert set(dataset.queries) == set(dataset.qrels)
    assert {doc for judged in dataset.qrels.values() for doc in judged} <= set(dataset.corpus)


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.is_dir(), reason="needs ../shared/datasets/scifact_beir")
def test_benchmark_on_reduced_scifact(tmp_path: Path) -> None:
    data = reduced_scifact(tmp_path / "scifact")
    dataset = load_beir(data, "test")
    assert len(dataset.queries) == 50
    results = run_benchmark(
        dataset,
        Settings(index_dir=tmp_path / "unused"),
        ["dense", "bm25", "hybrid"],
        index_dir=tmp_path / "index",
    )
    for mode, metrics in results["modes"].items():
        assert metrics["ndcg@10"] > 0.5, mode
        assert metrics["recall@100"] >= metrics["recall@10"] > 0.5, mode
        assert 0 < metrics["latency_ms_p50"] <= metrics["latency_ms_p95"], mode
        assert 0 < metrics["latency_k_ms_p50"] <= metrics["latency_k_ms_p95"], mode
    assert results["latency_k"] == 5
    written = write_report(results, tmp_path / "out")
    assert json.loads(written[0].read_text())["modes"].keys() == {"dense", "bm25", "hybrid"}
    assert all(path.stat().st_size > 0 for path in written)
