"""The confidence calibrator and its scoring (fast, no model): fitting, the shipped file's shape, missing
signals, the coverage-risk curve and the confidence section of the answer report."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from rag.errors import InvalidInputError
from rag.evaluation.confidence import confidence_report, coverage_risk, is_right
from rag.evaluation.records import AnswerRecord, QuestionRecord
from rag.evaluation.reports import write_answer_report
from rag.policy import GroundingPolicy
from rag.signals import DEFAULT_CALIBRATOR, FEATURES, Calibrator, fit_calibrator


def record(n: int, answerable: bool, text: str, judge: float, abstained: bool = False) -> QuestionRecord:
    signals = {name: 0.0 for name in FEATURES} | {"judge_logit": judge}
    answer = AnswerRecord(text, abstained, (), 1.0, 0.01, signals)
    extractive = AnswerRecord("", True, (), 0.1)
    return QuestionRecord(
        f"q{n}", "Where?", ("Paris",) if answerable else (), "a00-p000", 0.5, extractive, answer
    )


def synthetic(count: int = 200) -> list[QuestionRecord]:
    """Right answers have a higher judge logit than wrong ones, with overlap (a noisy signal)."""
    rng = random.Random(0)
    records = []
    for n in range(count):
        answerable = n % 2 == 0
        right = answerable and n % 4 == 0
        records.append(
            record(n, answerable, "Paris [1]." if right else "Lyon [1].", rng.gauss(1.5 if right else 0, 1))
        )
    return records


def test_the_fit_ranks_by_the_informative_signal_and_round_trips(tmp_path: Path) -> None:
    records = synthetic()
    rows = [r.generative.signals for r in records]
    calibrator = fit_calibrator(rows, [is_right(r) for r in records], FEATURES)
    assert calibrator.weights[FEATURES.index("judge_logit")] > 0
    assert calibrator.probability({"judge_logit": 3.0}) > calibrator.probability({"judge_logit": -1.0})
    calibrator.metadata["command"] = "python evals/fit_calibrator.py"
    calibrator.save(tmp_path / "c.json")
    loaded = Calibrator.load(tmp_path / "c.json")
    assert loaded.metadata["command"] == "python evals/fit_calibrator.py"
    assert loaded.probability(rows[0]) == pytest.approx(calibrator.probability(rows[0]), abs=1e-5)


def test_a_missing_signal_reads_as_its_development_mean() -> None:
    calibrator = Calibrator(("judge_logit", "dense_top"), (1.0, 2.0), 0.0, (0.5, 0.4), (1.0, 0.1))
    at_means = calibrator.probability({"judge_logit": 0.5, "dense_top": 0.4})
    assert calibrator.probability({"judge_logit": math.nan, "dense_top": 0.4}) == pytest.approx(at_means)
    assert calibrator.probability({}) == pytest.approx(0.5)


def test_a_broken_calibrator_file_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "calibrator.json"
    broken.write_text(
        json.dumps({"features": ["a"], "weights": [1, 2], "intercept": 0, "means": [0], "scales": [1]})
    )
    with pytest.raises(InvalidInputError, match="calibrator.json"):
        Calibrator.load(broken)


def test_the_shipped_calibrator_reads_every_signal_and_says_how_it_was_made() -> None:
    if not DEFAULT_CALIBRATOR.exists():
        pytest.skip("no calibrator shipped yet: python evals/fit_calibrator.py")
    shipped = Calibrator.load()
    assert set(shipped.features) <= set(FEATURES)
    assert "fit_calibrator.py" in shipped.metadata["command"]
    assert "0:11" in shipped.metadata["data"]["articles"]  # development articles only
    assert 0.5 < shipped.metadata["held_out"]["auroc_answered"] <= 1.0


def test_min_confidence_is_the_deciding_target() -> None:
    policy = GroundingPolicy(min_confidence=0.6)
    assert policy.confidence_abstains(0.59) and not policy.confidence_abstains(0.6)
    assert not policy.confidence_abstains(None)
    assert not GroundingPolicy().confidence_abstains(0.01)  # 0: off


def test_coverage_risk_and_the_report_section(tmp_path: Path) -> None:
    records = synthetic(80) + [record(999, True, "", 5.0, abstained=True)]
    calibrator = fit_calibrator(
        [r.generative.signals for r in records], [is_right(r) for r in records], FEATURES
    )
    report = confidence_report(records, calibrator, 0.5)
    assert 0.5 < report["auroc"] <= 1.0
    curve = coverage_risk(records, [0.0] * len(records))
    assert curve[0]["coverage"] == pytest.approx(80 / 81)  # the refused one is never shown
    lowest = min(report["curve"], key=lambda p: p["threshold"])
    assert (
        lowest["risk"] >= report["operating_point"]["risk"] - 1e-9
        or report["operating_point"]["coverage"] == 0
    )
    results = {
        "dataset": "synthetic",
        "articles": "0:1",
        "gate": -1.0,
        "support_threshold": 0.05,
        "modes": {},
        "confidence": {**report, "calibrator": "fitted here"},
    }
    written = write_answer_report(results, records, tmp_path, "pytest")
    assert (tmp_path / "coverage-risk.png").stat().st_size > 1000
    text = (tmp_path / "report.md").read_text()
    assert "AUROC of the confidence" in text and "coverage-risk.png" in text
    assert tmp_path / "coverage-risk.png" in written
