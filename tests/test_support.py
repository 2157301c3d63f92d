"""The SupportChecker contract, run against every checker, and the support benchmark's math."""

from __future__ import annotations

import numpy as np
import pytest

from rag.evaluation.support import fit_logistic, roc_auc
from rag.support import EvidenceSupportChecker, SupportChecker, content_terms

EVIDENCE = [
    "Mount Erebus is the southernmost active volcano on Earth. It was first climbed in 1908.",
    "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.",
]


@pytest.fixture(params=["lexical", "evidence"])
def checker(request: pytest.FixtureRequest, embedder) -> SupportChecker:
    return EvidenceSupportChecker(embedder if request.param == "evidence" else None)


class TestSupportCheckerContract:
    """What every SupportChecker must do; add new checkers to the `checker` fixture."""

    def test_is_a_support_checker(self, checker: SupportChecker) -> None:
        assert isinstance(checker, SupportChecker) and checker.name

    def test_one_score_in_0_1_per_claim(self, checker: SupportChecker) -> None:
        scores = checker.score(
            ["Erebus was first climbed in 1908.", "Bread rises."], [[EVIDENCE[0]], [EVIDENCE[1]]]
        )
        assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
        assert checker.score([], []) == []

    def test_no_evidence_is_no_support(self, checker: SupportChecker) -> None:
        assert checker.score(["Erebus was first climbed in 1908."], [[]]) == [0.0]

    def test_stated_claims_outscore_unstated_ones(self, checker: SupportChecker) -> None:
        stated, unstated, wrong_source = checker.score(
            [
                "Mount Erebus was first climbed in 1908.",
                "Mount Erebus erupted violently in 1974 and 1991.",
                "Mount Erebus was first climbed in 1908.",
            ],
            [[EVIDENCE[0]], [EVIDENCE[0]], [EVIDENCE[1]]],
        )
        assert stated > unstated and stated > wrong_source

    def test_several_passages_together_support_a_claim(self, checker: SupportChecker) -> None:
        claim = "Erebus was climbed in 1908 and sourdough rises from wild yeast."
        alone, both = checker.score([claim, claim], [[EVIDENCE[0]], EVIDENCE])
        assert both > alone


def test_content_terms_drop_stopwords_and_stem() -> None:
    assert content_terms("The volcanoes were climbed in 1908") == ["volcano", "climb", "1908"]


def test_roc_auc_counts_ties_as_half() -> None:
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.1, 0.9, 0.2, 0.8])) == 0.0


def test_fit_logistic_separates_a_separable_feature() -> None:
    x = np.array([[0.0], [0.1], [0.9], [1.0]])
    weights, bias = fit_logistic(x, np.array([0, 0, 1, 1]), l2=0.1)
    assert weights[0] > 0 and bias < 0
