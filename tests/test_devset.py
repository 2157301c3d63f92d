"""The real-documentation development set: every record well-formed and checked against its pages, and
its scoring on hand-made answers."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from rag.evaluation.devset import (
    COLLECTIONS,
    KINDS,
    DevQuestion,
    answer_record,
    collection_files,
    contains_answer,
    judge,
    load_questions,
    markdown_report,
    node_docs_folder,
    parse_question,
    sample_questions,
    score,
    source_path,
)
from rag.evaluation.scoring import normalize_answer
from rag.parsers import parse_file
from rag.types import Answer, Citation

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "evals/devset/questions.jsonl"
DOCUMENTS = ROOT / "documents"
NODE_DOCS = node_docs_folder()
needs_node_docs = pytest.mark.skipif(
    NODE_DOCS is None, reason="Node.js API pages not installed (apt-get install nodejs)"
)


@pytest.fixture(scope="module")
def questions() -> list[DevQuestion]:
    return load_questions(QUESTIONS)


@cache
def page_text(path: Path) -> str:
    """A page's text: Markdown as written (what grep sees), other formats as the parser reads them."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    return "\n".join(document.text for document in parse_file(path))


@cache
def normalized_page(path: Path) -> str:
    return f" {normalize_answer(page_text(path))} "


def test_the_set_has_every_kind_in_the_planned_mix(questions):
    kinds = Counter(q.kind for q in questions)
    assert len(questions) >= 110
    assert kinds["answerable"] >= 55 and kinds["unanswerable"] >= 18
    assert kinds["memory_trap"] >= 14 and kinds["follow_up"] >= 14
    assert sum(q.collection == "documents" and q.kind == "answerable" for q in questions) >= 15
    assert {q.collection for q in questions} == set(COLLECTIONS)
    assert len({q.id for q in questions}) == len(questions)


def test_follow_ups_carry_a_user_turn_and_the_answer_it_got(questions):
    for q in (q for q in questions if q.kind == "follow_up"):
        assert [t["role"] for t in q.history] == ["user", "assistant"], q.id


@needs_node_docs
def test_every_gold_answer_is_stated_by_each_of_its_sources(questions):
    for q in (q for q in questions if q.answerable):
        for source in q.sources:
            text = normalized_page(source_path(source, q.collection, NODE_DOCS, DOCUMENTS))
            assert any(f" {normalize_answer(g)} " in text for g in q.answers), (q.id, source)


@needs_node_docs
def test_no_page_of_the_collection_holds_the_terms_an_unanswerable_question_lacks(questions):
    texts = {
        c: [page_text(p).lower() for p in collection_files(c, NODE_DOCS, DOCUMENTS)] for c in COLLECTIONS
    }
    for q in (q for q in questions if not q.answerable):
        for term in q.absent:
            pattern = re.compile(r"(?<!\w)" + re.escape(term.lower()) + r"(?!\w)")
            found = [t for t in texts[q.collection] if term.lower() in t and pattern.search(t)]
            assert not found, (q.id, term)


def test_the_documents_sources_exist_in_the_repository(questions):
    for q in (q for q in questions if q.collection == "documents"):
        for source in q.sources:
            assert (ROOT / source).is_file(), (q.id, source)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "guess"}, "kind"),
        ({"collection": "web"}, "collection"),
        ({"answers": []}, "needs answers"),
        ({"source": None}, "source"),
        ({"source": "os.md"}, "node sources"),
        ({"history": [{"role": "user", "content": "x"}]}, "follow-ups"),
        ({"answers": ["'"]}, "normalisation"),
        ({"notes": "x"}, "unknown fields"),
        ({"question": ""}, "question"),
    ],
)
def test_malformed_records_are_refused_with_the_reason(change, message):
    record = {
        "id": "x",
        "collection": "node",
        "kind": "answerable",
        "question": "What is the default?",
        "history": [],
        "answers": ["64 KiB"],
        "source": "fs.md",
    }
    with pytest.raises(ValueError, match=message):
        parse_question({**record, **change})


def test_an_unanswerable_record_must_name_the_absent_terms():
    record = {"id": "u", "collection": "node", "kind": "unanswerable", "question": "Who?", "answers": []}
    with pytest.raises(ValueError, match="absent"):
        parse_question(record)
    assert not parse_question({**record, "absent": ["Dahl"]}).answerable


def test_duplicate_ids_are_refused_with_the_line(tmp_path):
    line = json.dumps(
        {"id": "u", "collection": "node", "kind": "memory_trap", "question": "Who?", "absent": ["a"]}
    )
    path = tmp_path / "q.jsonl"
    path.write_text(f"{line}\n{line}\n")
    with pytest.raises(ValueError, match=r"q.jsonl:2: duplicate id"):
        load_questions(path)


def test_a_sample_keeps_the_share_of_every_kind_and_the_file_order(questions):
    sample = sample_questions(questions, 30)
    assert len(sample) == 30 and len({q.id for q in sample}) == 30
    assert {q.kind for q in sample} == set(KINDS)
    order = [q.id for q in questions]
    assert [order.index(q.id) for q in sample] == sorted(order.index(q.id) for q in sample)
    assert sample_questions(questions, 30) == sample
    assert sample_questions(questions, None) == questions


ANSWERABLE = DevQuestion(
    "a", "node", "answerable", "Default highWaterMark?", answers=["64 KiB"], source="fs.md"
)
TRAP = DevQuestion("m", "node", "memory_trap", "Who created Node.js?", absent=["Dahl"])


def cited(*documents: str) -> list[str]:
    return [f"/usr/share/doc/nodejs/api/{d}" for d in documents]


def test_an_answer_is_right_only_when_it_matches_and_cites_the_source():
    assert judge(ANSWERABLE, "The default is 64 KiB [1].", False, cited("fs.md"))["outcome"] == "right"
    assert judge(ANSWERABLE, "64 KiB", False, cited("stream.md"))["outcome"] == "uncited"
    assert judge(ANSWERABLE, "It is 16 KiB [1].", False, cited("fs.md"))["outcome"] == "wrong"
    assert judge(ANSWERABLE, "The documents do not say.", True, [])["outcome"] == "false_refusal"
    assert judge(TRAP, "Ryan Dahl [1].", False, cited("fs.md"))["outcome"] == "false_answer"
    assert judge(TRAP, "The documents do not say.", True, [])["correct"]


def test_containment_is_on_whole_normalised_words():
    assert contains_answer("Use fs.exists() instead [1].", ["fs.exists()"])
    assert not contains_answer("It is 163840 bytes", ["16384"])


def _cited_in_fs(text: str) -> Answer:
    """An answer citing fs.md once."""
    citation = Citation(1, "/usr/share/doc/nodejs/api/fs.md", "fs", None, 0, 5, "quote", 0.5)
    return Answer(text, abstained=False, citations=[citation])


def test_a_false_refusal_costs_as_much_as_a_false_answer():
    refused = answer_record(ANSWERABLE, Answer("The documents do not say.", abstained=True))
    answered = answer_record(TRAP, _cited_in_fs("Ryan Dahl created it [1]."))
    right = answer_record(ANSWERABLE, _cited_in_fs("64 KiB [1]."))
    one_each = score([refused, right])["total"]
    other_way = score([answered, right])["total"]
    assert one_each["accuracy"] == other_way["accuracy"] == 50.0
    assert one_each["false_refusal"] == 50.0 and other_way["false_answer"] == 100.0
    scores = score([refused, answered, right])
    assert scores["kinds"]["memory_trap"]["abstained"] == 0.0
    assert scores["kinds"]["answerable"]["right"] == 50.0
    assert scores["total"]["balanced_accuracy"] == pytest.approx(25.0)
    report = markdown_report({"scores": scores}, [refused, answered, right], "python evals/devset_score.py")
    assert "| **total** | 3 | 33.3 |" in report
    assert "| m | memory_trap | false_answer |" in report and "| a | answerable | false_refusal |" in report


def test_a_confidence_threshold_turns_low_confidence_answers_into_abstentions():
    from rag.evaluation.devset import at_confidence, confidence_curve

    def confident(record, value):
        return {**record, "confidence": value}

    right = confident(answer_record(ANSWERABLE, _cited_in_fs("64 KiB [1].")), 0.9)
    trap = confident(answer_record(TRAP, _cited_in_fs("Ryan Dahl created it [1].")), 0.2)
    unsure_right = confident(answer_record(ANSWERABLE, _cited_in_fs("64 KiB [1].")), 0.1)
    records = [right, trap, unsure_right]
    held = at_confidence(records, 0.3)
    assert [r["outcome"] for r in held] == ["right", "abstained", "false_refusal"]
    assert [r["correct"] for r in held] == [True, True, False]
    curve = confidence_curve(records, (0.0, 0.3))
    assert curve[0]["auroc"] == pytest.approx(0.5)  # one right answer above the trap, one below it
    assert curve[1]["abstained"] == 0.0 and curve[2]["abstained"] == 100.0
    assert curve[2]["false_refusal"] == 50.0
