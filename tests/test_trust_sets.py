"""Trust sets: the memory-trap file and its absence check, judging, AUROC and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.trust_sets import dev_articles
from rag.evaluation.datasets import SquadQuestion
from rag.evaluation.devset import NODE_PAGES, collection_files, node_docs_folder
from rag.evaluation.trust import (
    TrustQuestion,
    collection_texts,
    interleave,
    judge,
    load_memory_traps,
    markdown_summary,
    squad_sets,
    stated_answers,
    summarise,
)

ROOT = Path(__file__).resolve().parent.parent
TRAPS = ROOT / "evals" / "memory_traps.jsonl"


def test_memory_trap_file_loads():
    traps = load_memory_traps(TRAPS)
    assert len(traps) >= 40
    assert len({t.id for t in traps}) == len(traps)
    assert {t.topic for t in traps} <= {"node", "tech", "project", "general"}


def test_memory_trap_answers_are_absent_from_the_collection():
    """Every known answer occurs in none of documents/ and the eight Node.js API pages (grep, as whole
    words, case-insensitive; the pages' Markdown source read without emphasis marks; evals/trust_sets.py
    checks the parsed text again before it asks)."""
    node_docs = node_docs_folder()
    if node_docs is None:
        pytest.skip("Debian's nodejs package (the Node.js API pages) is not installed")
    files = [
        *collection_files("node", node_docs, ROOT / "documents"),
        *collection_files("documents", node_docs, ROOT / "documents"),
    ]
    assert len(files) == len(NODE_PAGES) + 3
    assert stated_answers(load_memory_traps(TRAPS), collection_texts(files, parse=False)) == []


def test_stated_answers_finds_a_stated_answer():
    traps = load_memory_traps(TRAPS)[:1]
    texts = {"page.md": f"Fun fact: {traps[0].known_answers[0]} did it.", "other.md": "nothing"}
    assert stated_answers(traps, texts) == [(traps[0].id, traps[0].known_answers[0], "page.md")]
    assert stated_answers(traps, {"page.md": "numbers 9,007,199,254,740,9910"}) == []


def test_memory_trap_file_is_validated(tmp_path):
    bad = tmp_path / "traps.jsonl"
    bad.write_text(json.dumps({"id": "a", "topic": "x", "question": "Q?", "known_answers": []}) + "\n")
    with pytest.raises(ValueError, match="known answers"):
        load_memory_traps(bad)
    line = json.dumps({"id": "a", "topic": "x", "question": "Q?", "known_answers": ["A"]})
    bad.write_text(line + "\n" + line + "\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_memory_traps(bad)


def test_judging():
    inside = TrustQuestion("in_collection", "q1", "Who won?", ["Denver Broncos"])
    assert judge(inside, "The Denver Broncos won [1].", False)["right"]
    assert not judge(inside, "The documents do not say.", True)["right"]
    assert not judge(inside, "The Carolina Panthers won [2].", False)["right"]
    outside = TrustQuestion("off_collection", "q2", "Who won?")
    assert judge(outside, "The documents do not say.", True)["right"]
    assert not judge(outside, "Denver [1].", False)["right"]
    assert judge(TrustQuestion("memory_trap", "m", "Who?"), "No answer.", True)["right"]


def _record(kind: str, abstained: bool, right: bool, confidence: float | None) -> dict:
    return {
        "set": kind,
        "id": f"{kind}-{len(str(confidence))}",
        "question": "Q?",
        "answer": "A [1].",
        "abstained": abstained,
        "right": right,
        "confidence": confidence,
        "seconds": 1.0,
        "recovered": False,
    }


def test_summary_rates_auroc_and_targets():
    records = [
        _record("in_collection", False, True, 0.9),
        _record("in_collection", False, True, 0.8),
        _record("in_collection", False, False, 0.3),
        _record("in_collection", True, False, 0.2),
        _record("off_collection", True, True, 0.1),
        _record("off_collection", False, False, 0.4),
        _record("memory_trap", True, True, None),
        _record("memory_trap", False, False, 0.7),
    ]
    summary = summarise(records)
    sets = summary["sets"]
    assert sets["in_collection"]["answered"] == 75.0 and sets["in_collection"]["right"] == 50.0
    assert sets["off_collection"]["abstained"] == 50.0
    assert sets["memory_trap"]["abstained"] == 50.0 and sets["memory_trap"]["mean_confidence"] == 0.7
    off = summary["auroc"]["off_collection_run"]
    # right: 0.9, 0.8; others, system scores: 0.3, 0 (abstained), 0 (abstained), 0.4
    assert off["system"] == 1.0 and off["raw"] == 1.0 and off["raw_questions"] == 6
    assert summary["auroc"]["all"]["raw_questions"] == 7
    assert summary["targets"] == {
        "off_collection_abstained_95": False,
        "in_collection_answered_95": False,
        "memory_trap_abstained_90": False,
    }
    text = markdown_summary(summary, records)
    assert "| off_collection | 2 | 50.0 | 50.0 | 50.0 |" in text
    assert summarise([_record("memory_trap", True, True, None)])["auroc"]["all"]["system"] is None


def test_squad_sets_and_interleaving():
    inside = [SquadQuestion(f"i{n}", "Q?", ["a"] if n % 2 else [], "a00-p000") for n in range(10)]
    outside = [SquadQuestion(f"o{n}", "Q?", ["a"], "a20-p000") for n in range(10)]
    ins, offs = squad_sets(inside, outside, 3, 4, seed=1)
    assert len(ins) == 3 and all(q.answers for q in ins) and {q.set for q in ins} == {"in_collection"}
    assert len(offs) == 4 and all(not q.answers for q in offs)
    assert (ins, offs) == squad_sets(inside, outside, 3, 4, seed=1)
    mixed = interleave([ins, offs])
    assert [q.set for q in mixed[:2]] == ["in_collection", "off_collection"] and len(mixed) == 7


def test_only_development_articles_are_asked():
    assert dev_articles("16:32", 32) == "16:32"
    with pytest.raises(SystemExit):
        dev_articles("16:48", 32)
    with pytest.raises(SystemExit):
        dev_articles("30:", 32)


def test_auroc_counts_ties_half_like_scikit_learn():
    from rag.evaluation.trust import _auroc

    labels = [1, 0, 1, 1, 0, 0, 1, 0]
    scores = [0.9, 0.1, 0.4, 0.4, 0.4, 0.8, 0.0, 0.2]
    assert _auroc(labels, scores) == pytest.approx(0.5625)  # sklearn.metrics.roc_auc_score gives 0.5625
    assert _auroc([1, 1], [0.2, 0.3]) is None


def test_what_if_min_confidence_withholds_low_confidence_answers():
    from rag.evaluation.trust import at_confidence, threshold_table

    records = [
        {**_record("in_collection", False, True, 0.9), "answers": ["A"]},
        {**_record("in_collection", False, True, 0.25), "answers": ["A"]},
        _record("off_collection", False, False, 0.15),
        _record("off_collection", True, True, None),
        _record("memory_trap", False, False, 0.28),
    ]
    held = at_confidence(records, 0.3)
    assert [r["abstained"] for r in held] == [False, True, True, True, True]
    assert [r["right"] for r in held] == [True, False, True, True, True]
    rows = {row["min_confidence"]: row for row in threshold_table(records, (0.1, 0.3))}
    assert rows[0.1] == {
        "min_confidence": 0.1,
        "off_collection_abstained": 50.0,
        "in_collection_answered": 100.0,
        "in_collection_right": 100.0,
        "memory_trap_abstained": 0.0,
    }
    assert rows[0.3]["off_collection_abstained"] == 100.0 and rows[0.3]["in_collection_right"] == 50.0
    assert rows[0.3]["memory_trap_abstained"] == 100.0
    assert "| 0.30 | 100.0 | 50.0 | 50.0 | 100.0 |" in markdown_summary(summarise(records), records)
