"""The trained verifier: loading its weights, what it reads, and the data it is trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import ModelUnavailableError
from rag.training import climate_fever_pairs, scifact_pairs, squad_pairs
from rag.verifier import DEFAULT_WEIGHTS, Verifier, evidence_text, trainable

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def test_evidence_text_puts_the_sentences_sharing_most_words_first() -> None:
    texts = ["Bread rises from yeast. Erebus is a volcano.", "Erebus was first climbed in 1908."]
    chosen = evidence_text("When was Erebus first climbed?", texts, limit=2)
    assert chosen == "Erebus was first climbed in 1908. Erebus is a volcano."


def test_only_the_layers_above_the_frozen_ones_are_trained() -> None:
    assert not trainable("bert.embeddings.word_embeddings.weight", 2)
    assert not trainable("bert.encoder.layer.1.attention.self.query.weight", 2)
    assert trainable("bert.encoder.layer.2.attention.self.query.weight", 2)
    assert trainable("classifier.weight", 2)


def test_squad_pairs_label_gold_plausible_and_other_answers(tmp_path: Path) -> None:
    import random

    context = "Erebus was first climbed in 1908 by Edgeworth David. It last erupted in 1974."
    qas = [
        {"id": "1", "question": "When was Erebus first climbed?", "answers": [{"text": "1908"}]},
        {"id": "2", "question": "When did Erebus last erupt?", "answers": [{"text": "1974"}]},
        {
            "id": "3",
            "question": "When was Erebus first mapped?",
            "is_impossible": True,
            "answers": [],
            "plausible_answers": [{"text": "1908"}],
        },
    ]
    path = tmp_path / "squad.json"
    path.write_text(
        json.dumps({"data": [{"title": "Erebus", "paragraphs": [{"context": context, "qas": qas}]}]})
    )
    train, held = squad_pairs(path, slice(0, 1), set(), random.Random(0), "squad")
    labelled = {(p.claim, p.label) for p in train}
    assert ("When was Erebus first climbed? 1908", True) in labelled
    assert ("When was Erebus first mapped? 1908", False) in labelled
    assert all(p.evidence for p in train) and held == []
    assert {p.claim for p in train if not p.label} <= {
        "When was Erebus first mapped? 1908",
        "When was Erebus first climbed? 1974",
        "When did Erebus last erupt? 1908",
    }
    _, held = squad_pairs(path, slice(0, 1), {"a00-p000"}, random.Random(0), "squad")
    assert len(held) >= 3, "a held-out paragraph's pairs go to validation"


@pytest.mark.skipif(not DATASETS.is_dir(), reason="needs ../shared/datasets")
def test_development_pairs_come_only_from_development_splits() -> None:
    cf = climate_fever_pairs(DATASETS / "climate_fever" / "climate-fever.jsonl")
    lines = (DATASETS / "climate_fever" / "climate-fever.jsonl").read_text(encoding="utf-8").splitlines()
    odd_claims = {json.loads(line)["claim"] for line in lines[1::2]}
    assert cf and not {p.claim for p in cf} & odd_claims
    scifact = scifact_pairs(DATASETS / "scifact_beir")
    reserved = {
        json.loads(line)["claim"]
        for line in (DATASETS / "scifact_beir" / "claims_dev.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert scifact and any(p.label for p in scifact) and not {p.claim for p in scifact} & reserved


def test_a_missing_or_foreign_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="train-verifier"):
        Verifier(tmp_path / "none.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelUnavailableError, match="does not hold verifier weights"):
        Verifier(foreign)


def test_the_shipped_weights_have_a_card_saying_how_they_were_made() -> None:
    card = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["command"].startswith("rag eval train-verifier")
    assert card["history"] and all(0.5 < a <= 1 for a in card["history"][-1]["held_out_auc"].values())


@pytest.mark.slow
def test_the_verifier_tells_a_right_answer_from_a_plausible_wrong_one() -> None:
    verifier = Verifier()
    paragraph = "Mount Erebus was first climbed in 1908 by a party led by Edgeworth David."
    right, wrong, absent = verifier.probabilities(
        [
            "When was Mount Erebus first climbed? 1908",
            "When was Mount Erebus first mapped? 1908",
            "Who first climbed Mount Erebus? Roald Amundsen",
        ],
        [paragraph] * 3,
    )
    assert right > 0.5 > absent and right > wrong


@pytest.mark.slow
@pytest.mark.skipif(not DATASETS.is_dir(), reason="needs ../shared/datasets")
def test_training_runs_end_to_end_and_writes_loadable_weights(tmp_path: Path) -> None:
    from rag.training import train_verifier

    output = tmp_path / "verifier.safetensors"
    card = train_verifier(DATASETS, output, epochs=1, limit=32, progress=lambda _: None)
    assert card["history"][0]["held_out_auc"].keys() == {"squad2", "wice"}
    assert output.is_file() and output.with_suffix(".json").is_file()
    trained = Verifier(output)
    assert 0.0 <= float(trained.probabilities(["Erebus is a volcano."], ["Erebus is a volcano."])[0]) <= 1.0


@pytest.mark.slow
def test_the_assistant_checks_support_with_the_verifier_when_set(tmp_path: Path, embedder) -> None:
    from rag.assistant import Assistant
    from rag.config import Settings

    assistant = Assistant(Settings(index_dir=tmp_path, support_checker="verifier"), embedder=embedder)
    assert assistant.support_checker.name == "verifier"
