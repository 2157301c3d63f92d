"""Confidence signals (fast, fakes only): retrieval evidence, constraint coverage against a swapped entity
or number, answers from memory, the judge read from the answer's own conversation, and the answering
path carrying `confidence`, abstaining below `min_confidence` and recovering a false refusal."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from contracts import passages
from fakes import BagOfWordsEmbedder, KeywordChecker, ScriptedGenerator

from rag.assistant import Assistant
from rag.config import Settings
from rag.grounding import NO_ANSWER, answer_sentences
from rag.signals import FEATURES, AnswerEvidence, Calibrator, answer_signals, judge_logit
from rag.signals.features import constraint_features

ARTICLE = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
    "in France. They were descended from Norse raiders from Denmark, Iceland and Norway."
)


def test_constraint_coverage_finds_a_swapped_entity_or_number() -> None:
    right = constraint_features("In what country is Normandy located?", "France", [ARTICLE])
    swapped = constraint_features("In what country is Brittany located?", "France", [ARTICLE])
    number = constraint_features("Who gave their name to Normandy in the 14th century?", "Normans", [ARTICLE])
    assert right["question_values_missing"] == 0 and right["coverage"] > swapped["coverage"]
    assert swapped["question_values_missing"] == 1  # Brittany: no cited passage states it
    assert number["question_values_missing"] == 1  # 14th: the passage says 10th and 11th


def test_an_answer_from_memory_is_not_in_its_cited_passage() -> None:
    grounded = constraint_features(
        "Where were the Norse raiders from?", "Denmark, Iceland and Norway", [ARTICLE]
    )
    memory = constraint_features("Where were the Norse raiders from?", "Sweden and Finland", [ARTICLE])
    assert grounded["answer_in_cited"] == 1.0 and memory["answer_in_cited"] == 0.0


def test_signals_are_the_named_features_and_missing_reads_are_nan() -> None:
    given = passages(ARTICLE, "Bread rises with yeast.")
    text = "France [1]."
    evidence = AnswerEvidence(
        "In what country is Normandy?",
        given,
        text,
        answer_sentences(text, 2),
        refusal=0.02,
        token_logprobs=[-0.1, -0.3],
        extractive="The Normans gave their name to Normandy, a region in France [1].",
    )
    signals = answer_signals(evidence)
    assert list(signals) == list(FEATURES)
    assert signals["dense_top"] == pytest.approx(1.0) and signals["dense_margin"] == pytest.approx(0.1)
    assert signals["refusal_log"] == pytest.approx(math.log(0.02))
    assert signals["answer_logprob_mean"] == pytest.approx(-0.2) and signals["answer_logprob_min"] == -0.3
    assert signals["cites_top"] == 1.0 and signals["uncited_share"] == 0.0
    assert signals["extractive_agreement"] == 1.0  # "France" is in the extractive sentence
    assert math.isnan(signals["judge_logit"])  # no judge was asked


class YesNoScorer:
    """Scores continuations by a table, and keeps the conversations it was asked about."""

    def __init__(self, **logprobs: float) -> None:
        self.logprobs = logprobs
        self.asked: list[list[dict[str, str]]] = []

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        self.asked.append(messages)
        return self.logprobs[continuation]


def test_the_judge_continues_the_answers_own_conversation() -> None:
    scorer = YesNoScorer(Yes=math.log(0.8), No=math.log(0.1))
    prompt = [{"role": "user", "content": "Sources: ... Question: where?"}]
    assert judge_logit(scorer, prompt, "France [1].") == pytest.approx(math.log(8))
    conversation = scorer.asked[0]
    assert conversation[: len(prompt)] == prompt  # the prompt's prefix, reused from the cache
    assert conversation[len(prompt)] == {"role": "assistant", "content": "France [1]."}


class JudgingGenerator(ScriptedGenerator):
    """A scripted generator whose judge says Yes with probability `yes` (and never expects a refusal)."""

    def __init__(self, yes: float, *replies: str) -> None:
        super().__init__(*replies)
        self.yes = yes

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        return float(np.log({"Yes": self.yes, "No": 1 - self.yes}.get(continuation, 0.01)))


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signals")
    (folder / "docs").mkdir()
    (folder / "docs" / "volcano.txt").write_text(
        "Mount Erebus is the southernmost active volcano on Earth. "
        "The Erebus volcano was first climbed in 1908."
    )
    (folder / "docs" / "bread.txt").write_text("Sourdough bread rises because wild yeast ferments the dough.")
    Assistant(Settings(index_dir=folder / "index"), embedder=BagOfWordsEmbedder()).ingest([folder / "docs"])
    return folder / "index"


def calibrator_on_judge(path: Path) -> Path:
    """A calibrator that reads only the judge: P(right) = sigmoid(judge logit)."""
    Calibrator(("judge_logit",), (1.0,), 0.0, (0.0,), (1.0,)).save(path)
    return path


def ask(index_dir: Path, generator: ScriptedGenerator, **settings: object):  # noqa: ANN201
    assistant = Assistant(
        Settings(index_dir=index_dir, top_k=2, min_relevance=0.0, support_threshold=0.5, **settings),
        embedder=BagOfWordsEmbedder(),
        generator=generator,
        support_checker=KeywordChecker(),
    )
    return assistant.ask("When was the Erebus volcano first climbed?")


@pytest.mark.parametrize(("yes", "abstains"), [(0.9, False), (0.2, True)])
def test_the_answer_carries_its_confidence_and_abstains_below_the_target(
    index_dir: Path, tmp_path: Path, yes: float, abstains: bool
) -> None:
    calibrator = calibrator_on_judge(tmp_path / "calibrator.json")
    generator = JudgingGenerator(yes, "The Erebus volcano was first climbed in 1908 [1].")
    answer = ask(index_dir, generator, calibrator_path=calibrator, min_confidence=0.5)
    assert answer.confidence == pytest.approx(yes)  # sigmoid(log(yes / (1 - yes)))
    assert answer.abstained is abstains
    assert answer.to_dict()["confidence"] == pytest.approx(yes, abs=1e-4)
    assert set(answer.signals) == set(FEATURES)


def test_a_false_refusal_is_answered_once_from_the_passage(index_dir: Path, tmp_path: Path) -> None:
    calibrator = calibrator_on_judge(tmp_path / "calibrator.json")
    recovered = ask(index_dir, JudgingGenerator(0.9, NO_ANSWER), calibrator_path=calibrator)
    assert recovered.recovered and not recovered.abstained
    assert "1908" in recovered.text and recovered.citations
    refused = ask(index_dir, JudgingGenerator(0.1, NO_ANSWER), calibrator_path=calibrator)
    assert refused.abstained and not refused.recovered
    off = ask(index_dir, JudgingGenerator(0.9, NO_ANSWER), calibrator_path=calibrator, recover_refusals=False)
    assert off.abstained


def test_signals_can_be_turned_off(index_dir: Path) -> None:
    answer = ask(
        index_dir,
        JudgingGenerator(0.9, "The Erebus volcano was first climbed in 1908 [1]."),
        confidence_signals=False,
    )
    assert answer.confidence is None and not answer.signals and not answer.abstained


def test_the_hidden_state_probe_is_the_fitted_pipeline_folded_into_one_vector() -> None:
    """fit_probe standardises, projects (PCA) and fits a logistic regression; the stored probe is one dot
    product over the raw state and must give the same log-odds as that pipeline."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from rag.signals import HiddenProbe, fit_probe

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 80)
    states = rng.normal(size=(80, 40)) + np.outer(labels, np.linspace(0, 2, 40))
    probe = fit_probe(states.tolist(), labels.tolist(), components=8, c=0.5)
    pipeline = make_pipeline(
        StandardScaler(), PCA(n_components=8, random_state=0), LogisticRegression(C=0.5, max_iter=2000)
    ).fit(states, labels)
    expected = pipeline.decision_function(states[:5])
    assert [probe.log_odds(s) for s in states[:5].tolist()] == pytest.approx(expected.tolist(), abs=1e-6)
    again = HiddenProbe.from_dict(probe.to_dict())
    assert again.log_odds(states[0].tolist()) == pytest.approx(expected[0], abs=1e-3)
    assert math.isnan(probe.log_odds([0.0] * 3))  # another model's state size: no reading


def test_the_calibrator_reads_the_probe_it_was_stored_with(tmp_path: Path) -> None:
    from rag.signals import HiddenProbe

    probe = HiddenProbe((1.0, -1.0), 0.5, (0.0, 0.0))
    calibrator = Calibrator(("hidden_probe",), (2.0,), 0.0, (0.0,), (1.0,), probe=probe)
    calibrator.save(tmp_path / "c.json")
    loaded = Calibrator.load(tmp_path / "c.json")
    assert loaded.probe is not None and loaded.probe.log_odds([3.0, 1.0]) == pytest.approx(2.5)
    assert loaded.probability({"hidden_probe": 2.5}) > loaded.probability({"hidden_probe": -2.5})


def test_a_refit_probe_is_read_from_the_stored_hidden_state_not_the_stored_signal() -> None:
    from rag.evaluation.confidence import stored_signals
    from rag.evaluation.records import AnswerRecord
    from rag.signals import HiddenProbe

    answer = AnswerRecord(
        "x", False, (), 1.0, signals={"hidden_probe": float("nan")}, hidden_state=(2.0, 0.0)
    )
    calibrator = Calibrator(
        ("hidden_probe",), (1.0,), 0.0, (0.0,), (1.0,), probe=HiddenProbe((1.5, 9.0), 0.0, (0.0, 0.0))
    )
    assert stored_signals(answer, calibrator)["hidden_probe"] == pytest.approx(3.0)
    again = AnswerRecord.from_dict(answer.to_dict())
    assert again.hidden_state == (2.0, 0.0)
