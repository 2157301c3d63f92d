"""The answer benchmark: records, scoring and calibration on hand-made records; a small real run (slow)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import KeywordChecker

from rag.evaluation.answers import resupport
from rag.evaluation.calibration import calibrate, write_calibration
from rag.evaluation.records import AnswerRecord, QuestionRecord, SentenceRecord, read_records, write_records
from rag.evaluation.scoring import exact_match, score_mode, token_f1

SQUAD2 = (
    Path(__file__).resolve().parents[1].parent
    / "shared/datasets/squad_v2_cs224n_half/dev-v2.0.cs224n-half.json"
)


def sentence(text: str, cites: list[str], support: float, alone=(), without=()) -> SentenceRecord:
    return SentenceRecord(text, tuple(cites), (), support, tuple(alone), tuple(without))


def record(
    rid: str,
    answers: list[str],
    gold: str,
    text: str,
    sentences: list[SentenceRecord],
    evidence: float = 0.5,
    abstained: bool = False,
) -> QuestionRecord:
    view = AnswerRecord(text, abstained, tuple(sentences), 1.0)
    return QuestionRecord(rid, "q", tuple(answers), gold, evidence, view, view)


RECORDS = [
    record("1", ["1908"], "p1", "1908 [1].", [sentence("1908 [1].", ["p1"], 0.9)]),
    record(
        "2",
        ["Antarctica"],
        "p2",
        "In Antarctica [1][2].",
        [sentence("In Antarctica [1][2].", ["p2", "p9"], 0.8, alone=[0.8, 0.1], without=[0.1, 0.8])],
    ),
    record("3", [], "p3", "Made up [1].", [sentence("Made up [1].", ["p3"], 0.2)]),
    record("4", [], "p4", "", [], evidence=0.1, abstained=True),
]


def test_squad_scores() -> None:
    assert exact_match("The 1908.", ["1908"]) == 1.0
    assert token_f1("in cold Antarctica", ["Antarctica"]) == pytest.approx(0.5)  # precision 1/3, recall 1


def test_generative_mode_scores() -> None:
    m = score_mode(RECORDS, "generative", gate=-1.0, threshold=0.5)
    assert m["answered_rate"] == 100.0 and m["abstain_rate_unanswerable"] == 50.0
    assert m["exact_match"] == 50.0 and m["gold_cited_rate"] == 100.0
    assert m["citation_recall"] == pytest.approx(200 / 3)
    assert m["citation_precision"] == pytest.approx(50.0)  # p1 and p2 needed; p9 not; p3 unsupported


def test_strict_mode_drops_unsupported_answers_and_the_gate_abstains() -> None:
    m = score_mode(RECORDS, "strict", gate=-1.0, threshold=0.5)
    assert m["abstain_rate_unanswerable"] == 100.0 and m["citation_recall"] == 100.0
    gated = score_mode(RECORDS, "strict", gate=0.6, threshold=0.5)
    assert gated["answered_rate"] == 0.0


def test_calibrate_keeps_the_answered_rate() -> None:
    chosen = calibrate(RECORDS, min_answered=90.0)
    assert chosen["dev_strict"]["answered_rate"] >= 90.0
    assert chosen["dev_strict"]["abstain_rate_unanswerable"] == 100.0


@pytest.mark.slow
@pytest.mark.skipif(not SQUAD2.exists(), reason="needs ../shared/datasets")
def test_small_real_run_scores_non_trivially(tmp_path: Path) -> None:
    from rag.config import Settings
    from rag.evaluation.answers import run_answers

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results, records = run_answers(
        SQUAD2, Settings(answer_style="short"), articles="0:2", limit=20, index_dir=tmp_path / "index"
    )
    assert len(records) == 20
    generative, strict = results["modes"]["generative"], results["modes"]["strict"]
    assert generative["answered_rate"] >= 50 and generative["f1"] >= 40
    assert generative["gold_cited_rate"] >= 50
    assert strict["abstain_rate_unanswerable"] >= generative["abstain_rate_unanswerable"]
    assert results["modes"]["extractive"]["answered_rate"] >= 50


def test_refusal_threshold_abstains_on_recorded_doubt() -> None:
    doubtful = [replace(r, generative=replace(r.generative, refusal=0.3)) for r in RECORDS[:3]]
    assert score_mode(doubtful, "generative", gate=-1.0, threshold=0.5, refusal=1.0)["answered_rate"] == 100.0
    refused = score_mode(doubtful, "generative", gate=-1.0, threshold=0.5, refusal=0.25)
    assert refused["answered_rate"] == 0.0 and refused["abstain_rate_unanswerable"] == 100.0
    assert (
        score_mode(doubtful, "extractive", gate=-1.0, threshold=0.5, refusal=0.25)["answered_rate"] == 100.0
    )


def test_resupport_scores_stored_sentences_again_with_their_question() -> None:
    corpus = {
        "p1": ("t", "erebus was climbed in 1908"),
        "p2": ("t", "it lies in antarctica"),
        "p9": ("t", "x"),
    }
    records = [replace(r, question="erebus climbed") for r in RECORDS[:2]]
    again = resupport(records, corpus, KeywordChecker(), short_answers=True)
    first, second = (r.generative.sentences[0] for r in again)
    assert first.support == 1.0  # "erebus climbed 1908" all in p1
    assert second.support == 0.0  # "erebus climbed in antarctica": p2 lacks "erebus"
    assert second.alone == (0.0, 0.0) and len(second.without) == 2
    assert again[0].extractive.sentences[0].support == 0.9  # extractive answers keep theirs
    assert records[0].generative.sentences[0].support == 0.9  # the input is left as it was


OLD_RECORD_LINE = json.dumps(
    {
        "id": "5733be284776f41900661182",
        "question": "To whom did the Virgin Mary allegedly appear in 1858?",
        "answers": ["Saint Bernadette Soubirous"],
        "gold": "a00-p000",
        "evidence": 0.61,
        "extractive": {
            "text": "Saint Bernadette Soubirous [1].",
            "abstained": False,
            "sentences": [
                {
                    "text": "Saint Bernadette Soubirous [1].",
                    "citations": ["a00-p000"],
                    "invalid": [],
                    "support": 0.7,
                    "alone": [],
                    "without": [],
                }
            ],
            "seconds": 0.2,
        },
    }
)
"""A record as earlier runs wrote it: extractive only, no refusal probability."""


def test_old_record_files_load_and_write_back_the_same_keys(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(OLD_RECORD_LINE + "\n")
    (loaded,) = read_records(path)
    assert loaded.generative is None and loaded.extractive.refusal is None
    assert loaded.extractive.sentences[0].invalid_citations == ()
    assert score_mode([loaded], "extractive", gate=-1.0, threshold=0.5)["exact_match"] == 100.0
    write_records(tmp_path / "again.jsonl", [loaded])
    old = json.loads(OLD_RECORD_LINE)
    written = json.loads((tmp_path / "again.jsonl").read_text())
    assert written == {**old, "extractive": {**old["extractive"], "refusal": None}}


def test_records_round_trip(tmp_path: Path) -> None:
    write_records(tmp_path / "r.jsonl", RECORDS)
    write_records(tmp_path / "r.jsonl", RECORDS[:1], append=True)
    assert read_records(tmp_path / "r.jsonl") == [*RECORDS, RECORDS[0]]


def test_calibration_file_keeps_other_entries_and_drops_the_old_single_one(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"answers": {"old": 1}, "support": {"checker": "evidence"}}))
    write_calibration(path, "answers_strict", {"min_relevance": 0.4})
    assert json.loads(path.read_text()) == {
        "support": {"checker": "evidence"},
        "answers_strict": {"min_relevance": 0.4},
    }


class _CountingAssistant:
    """Just enough of an Assistant for collect_records: counts the questions it is asked."""

    support_checker = KeywordChecker()

    def __init__(self) -> None:
        self.asked: list[str] = []

    def ask(self, question: str, **_options: object):  # noqa: ANN201
        from rag.types import Answer

        self.asked.append(question)
        return Answer("Ferries [1].", abstained=False)

    def claim_context(self, question: str, _extractive: bool) -> str:
        return question


def test_a_collection_cut_short_resumes_without_asking_again(tmp_path: Path) -> None:
    from rag.evaluation.answers import collect_records
    from rag.evaluation.datasets import SquadQuestion

    questions = [SquadQuestion(f"q{i}", f"question {i}?", ["ferries"], "a00-p000") for i in range(3)]
    sink = tmp_path / "records.partial.jsonl"
    first = _CountingAssistant()
    collect_records(first, questions[:2], with_extractive=False, sink=sink)  # cut after two
    again = _CountingAssistant()
    records = collect_records(again, questions, with_extractive=False, sink=sink)
    assert again.asked == ["question 2?"]
    assert [r.id for r in records] == ["q0", "q1", "q2"]
    assert [r.id for r in read_records(sink)] == ["q0", "q1", "q2"]
