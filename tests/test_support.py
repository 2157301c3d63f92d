"""The SupportChecker contract (tests/contracts.py) run against every checker that runs offline, the
evidence checker's features, and the support benchmark's math."""

from __future__ import annotations

import numpy as np
import pytest
from contracts import EVIDENCE, SupportCheckerContract
from fakes import KeywordChecker, SentenceVectorsOnly

from rag.evaluation.support import cross_validated_auc, fit_logistic, roc_auc
from rag.support import (
    FEATURE_NAMES,
    EvidenceSupportChecker,
    SupportChecker,
    token_alignment,
)


class TestEvidenceSupportChecker(SupportCheckerContract):
    """The evidence checker lexical only, with the MiniLM's token vectors, and with sentence vectors only."""

    @pytest.fixture(
        params=[
            "lexical",
            pytest.param("evidence", marks=pytest.mark.slow),
            pytest.param("sentence-vectors-only", marks=pytest.mark.slow),
        ]
    )
    def checker(self, request: pytest.FixtureRequest) -> SupportChecker:
        if request.param == "lexical":
            return EvidenceSupportChecker(None)
        embedder = request.getfixturevalue("embedder")
        if request.param == "sentence-vectors-only":
            embedder = SentenceVectorsOnly(embedder)
        return EvidenceSupportChecker(embedder)


class TestKeywordChecker(SupportCheckerContract):
    @pytest.fixture
    def checker(self) -> SupportChecker:
        return KeywordChecker()


def test_token_alignment_finds_the_missing_piece(embedder) -> None:
    texts = [
        "Erebus was first climbed in 1908.",
        "Erebus was first climbed in 1908 by an expedition on horseback.",
        "Unrelated: sourdough rises thanks to wild yeast.",
        EVIDENCE[0],
    ]
    _, tokens = embedder.token_embeddings(texts)
    stated, extra, unrelated = (token_alignment(t, [tokens[3]]) for t in tokens[:3])
    assert stated[1] == 0.0 and stated[0] > 0.9
    assert extra[1] > stated[1] and extra[0] < stated[0]
    assert unrelated[0] < extra[0]
    assert token_alignment(tokens[0], []) == (0.0, 1.0)


def test_features_match_their_names(embedder) -> None:
    features = EvidenceSupportChecker(embedder).features(["Erebus was climbed in 1908."], [[EVIDENCE[0]]])
    assert features.shape == (1, len(FEATURE_NAMES))


def test_roc_auc_counts_ties_as_half() -> None:
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.1, 0.9, 0.2, 0.8])) == 0.0


def test_fit_logistic_separates_a_separable_feature() -> None:
    x = np.array([[0.0], [0.1], [0.9], [1.0]])
    weights, bias = fit_logistic(x, np.array([0, 0, 1, 1]), l2=0.1)
    assert weights[0] > 0 and bias < 0


def test_cross_validated_auc_scores_held_out_folds() -> None:
    rng = np.random.default_rng(1)
    labels = np.arange(100) % 2 == 0
    informative = labels[:, None] + rng.normal(0, 0.3, (100, 1))
    assert cross_validated_auc(informative, labels) > 0.95
    assert 0.3 < cross_validated_auc(rng.normal(size=(100, 1)), labels) < 0.7


@pytest.mark.slow
class TestJudgeSupportChecker(SupportCheckerContract):
    """The packaged generator judging support (the NLI cross-encoder has no offline model to run)."""

    @pytest.fixture
    def checker(self) -> SupportChecker:
        from rag.config import Settings
        from rag.generation import build_generator
        from rag.support import JudgeSupportChecker

        return JudgeSupportChecker(build_generator(Settings()))


@pytest.mark.slow
def test_the_generator_judges_support_from_its_yes_no_probabilities() -> None:
    from rag.config import Settings
    from rag.generation import build_generator
    from rag.support import JudgeSupportChecker

    judge = JudgeSupportChecker(build_generator(Settings()))
    evidence = ["The Skerry lighthouse was automated in 1987. Ferries run twice a day in summer."]
    supported, changed, unrelated, empty = judge.score(
        [
            "The Skerry lighthouse was automated in 1987.",
            "The Skerry lighthouse was automated in 1954.",
            "The island has a famous bakery.",
            "The lighthouse was automated.",
        ],
        [evidence, evidence, evidence, []],
    )
    assert supported > 0.5 > max(changed, unrelated)
    assert empty == 0.0
    assert judge.name == "judge"
