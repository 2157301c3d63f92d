"""The answer benchmark's scoring on hand-made records, and a small real run (slow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.evaluation.answers import calibrate, exact_match, resupport, score_mode, token_f1

SQUAD2 = (
    Path(__file__).resolve().parents[1].parent
    / "shared/datasets/squad_v2_cs224n_half/dev-v2.0.cs224n-half.json"
)


def sentence(text: str, cites: list[str], support: float, alone=(), without=()) -> dict:
    return {
        "text": text,
        "citations": cites,
        "invalid": [],
        "support": support,
        "alone": list(alone),
        "without": list(without),
    }


def record(
    rid: str,
    answers: list[str],
    gold: str,
    text: str,
    sentences: list[dict],
    evidence: float = 0.5,
    abstained: bool = False,
) -> dict:
    view = {"text": text, "abstained": abstained, "sentences": sentences, "seconds": 1.0}
    return {
        "id": rid,
        "question": "q",
        "answers": answers,
        "gold": gold,
        "evidence": evidence,
        "generative": view,
        "extractive": view,
    }


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
    doubtful = [dict(r, generative=dict(r["generative"], refusal=0.3)) for r in RECORDS[:3]]
    assert score_mode(doubtful, "generative", gate=-1.0, threshold=0.5, refusal=1.0)["answered_rate"] == 100.0
    refused = score_mode(doubtful, "generative", gate=-1.0, threshold=0.5, refusal=0.25)
    assert refused["answered_rate"] == 0.0 and refused["abstain_rate_unanswerable"] == 100.0
    assert (
        score_mode(doubtful, "extractive", gate=-1.0, threshold=0.5, refusal=0.25)["answered_rate"] == 100.0
    )


class WordChecker:
    """Support 1 when every word of the claim is in the evidence."""

    name = "words"

    def score(self, claims, evidence) -> list[float]:
        return [
            float(bool(texts) and set(c.lower().strip(".?").split()) <= set(" ".join(texts).lower().split()))
            for c, texts in zip(claims, evidence, strict=True)
        ]


def test_resupport_scores_stored_sentences_again_with_their_question() -> None:
    corpus = {
        "p1": ("t", "erebus was climbed in 1908"),
        "p2": ("t", "it lies in antarctica"),
        "p9": ("t", "x"),
    }
    records = [dict(r, question="erebus climbed") for r in RECORDS[:2]]
    again = resupport(records, corpus, WordChecker(), short_answers=True)
    first, second = (r["generative"]["sentences"][0] for r in again)
    assert first["support"] == 1.0  # "erebus climbed 1908" all in p1
    assert second["support"] == 0.0  # "erebus climbed in antarctica": p2 lacks "erebus"
    assert second["alone"] == [0.0, 0.0] and len(second["without"]) == 2
    assert again[0]["extractive"]["sentences"][0]["support"] == 0.9  # extractive answers keep theirs
    assert records[0]["generative"]["sentences"][0]["support"] == 0.9  # the input is left as it was
