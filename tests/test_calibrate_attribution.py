"""The attribution calibration replays the rule of `attribute_citations` on stored scores."""

from __future__ import annotations

from evals.calibrate_attribution import replay

ROWS = [
    # answerable, gold paragraph, sentences: (citations, support of the cited ones, scores by paragraph)
    (True, "p2", [(["p1"], 0.1, {"p1": 0.1, "p2": 0.5})]),  # weakly cited: p2 is added from 0.5 down
    (True, "p3", [(["p3"], 0.7, {"p3": 0.7, "p4": 0.9})]),  # already supported: nothing is added
    (False, "p5", [([], 0.0, {"p5": 0.2, "p6": 0.45})]),  # uncited, unanswerable: p6 added from 0.45
]


def test_replay_adds_the_best_passage_from_the_threshold_on() -> None:
    assert replay(ROWS, 0.6) == (1, 2, 0, 0)
    assert replay(ROWS, 0.5) == (2, 2, 1, 0)
    assert replay(ROWS, 0.4) == (2, 2, 2, 1)


def test_a_passage_is_added_only_when_it_beats_the_cited_support() -> None:
    rows = [(True, "p2", [(["p1"], 0.45, {"p1": 0.45, "p2": 0.44})])]
    assert replay(rows, 0.4) == (0, 1, 0, 0)
