"""The retrieval benchmark end to end on a reduced SciFact, and the dataset loaders (BEIR, SQuAD 1.1/2.0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.evaluation.datasets import load_beir, load_squad, parse_articles, split_articles
from rag.evaluation.reports import write_report
from rag.evaluation.retrieval import run_benchmark

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


def squad_v2(folder: Path) -> Path:
    """A tiny SQuAD 2.0 folder: two articles, one unanswerable question, the file named as SQuAD names it."""

    def article(title: str, context: str, qas: list[dict]) -> dict:
        return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}

    data = [
        article(
            "Mount_Erebus",
            "Mount Erebus was first climbed in 1908.",
            [
                {"id": "q1", "question": "When was Erebus climbed?", "answers": [{"text": "1908"}]},
                {"id": "q2", "question": "Who owns Erebus?", "answers": [], "is_impossible": True},
            ],
        ),
        article(
            "Skerry",
            "The Skerry lighthouse was automated in 1987.",
            [{"id": "q3", "question": "When was it automated?", "answers": [{"text": "1987"}]}],
        ),
    ]
    folder.mkdir()
    (folder / "dev-v2.0.json").write_text(json.dumps({"version": "v2.0", "data": data}))
    return folder


def test_squad_2_folder_loads_for_retrieval_and_answers(tmp_path: Path) -> None:
    folder = squad_v2(tmp_path / "squad2")
    squad = load_squad(folder, "0:2")
    assert squad.name == "squad2" and set(squad.corpus) == {"a00-p000", "a01-p000"}
    assert [q.answerable for q in squad.questions] == [True, False, True]
    assert squad.corpus["a00-p000"] == ("Mount Erebus", "Mount Erebus was first climbed in 1908.")
    retrieval = squad.retrieval()
    assert retrieval.qrels == {"q1": {"a00-p000": 1}, "q2": {"a00-p000": 1}, "q3": {"a01-p000": 1}}
    assert retrieval.split == "articles 0:2"
    assert load_squad(folder, "1").retrieval().queries == {"q3": "When was it automated?"}
    assert len(squad.sample(2)) == 2 and squad.sample(None) == squad.questions
    assert split_articles(folder, "dev") == "0:1" and split_articles(folder, "reserved") == "1:2"


@pytest.mark.skipif(not SQUAD.is_dir(), reason="needs ../shared/datasets/squad_v1.1")
def test_squad_paragraphs_become_documents() -> None:
    dataset = load_squad(SQUAD, "0:2").retrieval()
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


@pytest.mark.slow
def test_rag_eval_retrieval_reads_a_squad_2_folder(tmp_path: Path) -> None:
    folder = squad_v2(tmp_path / "squad2")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rag", "eval", "retrieval", "--format", "squad", "--data", str(folder)]
    options = ["--articles", "0:2", "--modes", "bm25", "--latency-k", "0", "--out", str(out)]
    result = subprocess.run([*command, *options], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "results.json").read_text())["modes"]["bm25"]["queries"] == 3.0
