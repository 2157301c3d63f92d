"""The ask path with a scripted generator and the real embedder: grounding modes, abstention,
extractive answers, follow-up rewriting and the streamed events."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import HesitantGenerator, ScriptedGenerator

from rag.assistant import Assistant
from rag.config import Settings
from rag.grounding import NO_ANSWER


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    (folder / "volcano.txt").write_text(
        "Mount Erebus is the southernmost active volcano on Earth, in Antarctica. "
        "It was first climbed in 1908."
    )
    (folder / "bread.txt").write_text(
        "Sourdough bread rises because wild yeast and lactobacilli ferment the dough."
    )
    index = folder.parent / "index"
    Assistant(Settings(index_dir=index, top_k=2), embedder=embedder).ingest([folder])
    return index


def assistant_with(index_dir: Path, embedder, *replies: str, **settings) -> Assistant:
    return Assistant(
        Settings(
            **{"index_dir": index_dir, "top_k": 2, "min_relevance": 0.1, "support_threshold": 0.5, **settings}
        ),
        embedder=embedder,
        generator=ScriptedGenerator(*replies),
    )


def volcano_number(answer) -> int:
    return next(n for n, p in enumerate(answer.passages, start=1) if p.chunk.doc_id.endswith("volcano.txt"))


QUESTION = "When was Mount Erebus first climbed?"


def test_flag_marks_unsupported_sentences_and_keeps_them(index_dir: Path, embedder) -> None:
    probe = assistant_with(index_dir, embedder, "x").ask(QUESTION, answer_mode="extractive")
    n = volcano_number(probe)
    reply = (
        f"Mount Erebus was first climbed in 1908 [{n}]. "
        f"It has a ski resort with twelve lifts [{n}]. It is cold."
    )
    answer = assistant_with(index_dir, embedder, reply).ask(QUESTION)
    assert [s.supported for s in answer.sentences] == [True, False, False]
    assert answer.text == reply and not answer.abstained
    assert [c.n for c in answer.citations] == [n]


def test_strict_removes_unsupported_sentences(index_dir: Path, embedder) -> None:
    n = volcano_number(assistant_with(index_dir, embedder).ask(QUESTION, answer_mode="extractive"))
    reply = f"Mount Erebus was first climbed in 1908 [{n}]. It has a ski resort with twelve lifts [{n}]."
    answer = assistant_with(index_dir, embedder, reply).ask(QUESTION, grounding_mode="strict")
    assert answer.text == f"Mount Erebus was first climbed in 1908 [{n}]."
    assert all(s.supported for s in answer.sentences)


def test_strict_abstains_when_nothing_is_supported(index_dir: Path, embedder) -> None:
    answer = assistant_with(index_dir, embedder, "Penguins invented the telescope in 1402 [1].").ask(
        QUESTION, grounding_mode="strict"
    )
    assert answer.abstained and answer.text == NO_ANSWER and answer.passages


def test_off_skips_the_check(index_dir: Path, embedder) -> None:
    answer = assistant_with(index_dir, embedder, "Penguins invented the telescope [1].").ask(
        QUESTION, grounding_mode="off"
    )
    assert not answer.abstained and answer.sentences[0].supported is None


def test_the_models_refusal_is_an_abstention(index_dir: Path, embedder) -> None:
    answer = assistant_with(index_dir, embedder, NO_ANSWER).ask(QUESTION)
    assert answer.abstained and answer.text == NO_ANSWER and not answer.sentences


def test_weak_evidence_abstains_without_the_model(index_dir: Path, embedder) -> None:
    assistant = assistant_with(index_dir, embedder, min_relevance=0.99)
    answer = assistant.ask(QUESTION)
    assert answer.abstained and "generation_seconds" not in answer.timings and answer.passages
    assert assistant.generator.calls == []


def test_extractive_mode_needs_no_generator(index_dir: Path, embedder) -> None:
    assistant = assistant_with(index_dir, embedder, answer_mode="extractive")
    answer = assistant.ask(QUESTION)
    assert "1908" in answer.text and answer.citations and answer.sentences[0].supported
    assert assistant.generator.calls == []


def test_stream_yields_tokens_then_the_answer_with_support(index_dir: Path, embedder) -> None:
    assistant = assistant_with(index_dir, embedder, "Erebus was first climbed in 1908 [1].")
    stream = assistant.ask_stream(QUESTION)
    with pytest.raises(RuntimeError, match="not written yet"):
        stream.answer  # noqa: B018
    tokens = list(stream)
    assert len(tokens) > 2 and all(isinstance(t, str) for t in tokens)
    assert "".join(tokens) == stream.answer.text
    assert stream.answer.sentences[0].supported in (True, False)
    assert list(stream) == [] and stream.result() is stream.answer, "a finished stream keeps its answer"


def test_follow_up_is_rewritten_before_retrieval(index_dir: Path, embedder) -> None:
    assistant = assistant_with(
        index_dir, embedder, "How does sourdough bread rise?", "It rises from wild yeast [1]."
    )
    history = [
        {"role": "user", "content": "What is sourdough?"},
        {"role": "assistant", "content": "A bread [1]."},
    ]
    answer = assistant.ask("and how does it rise?", history=history)
    rewrite_prompt, answer_prompt = assistant.generator.calls
    assert "What is sourdough?" in rewrite_prompt[-1]["content"]
    assert "How does sourdough bread rise?" in answer_prompt[-1]["content"]
    assert answer.passages[0].chunk.doc_id.endswith("bread.txt")
    assert "rewrite_seconds" in answer.timings


@pytest.mark.parametrize(("probability", "abstains"), [(0.6, True), (0.2, False)])
def test_refusal_threshold_abstains_on_the_models_own_doubt(
    index_dir: Path, embedder, probability: float, abstains: bool
) -> None:
    generator = HesitantGenerator(probability, "Mount Erebus was first climbed in 1908 [1].")
    assistant = Assistant(
        Settings(index_dir=index_dir, top_k=2, min_relevance=0.1, refusal_threshold=0.5),
        embedder=embedder,
        generator=generator,
    )
    answer = assistant.ask(QUESTION)
    assert generator.scored == [NO_ANSWER]
    assert answer.abstained is abstains
    assert answer.refusal_probability == pytest.approx(probability)
    assert answer.to_dict()["refusal_probability"] == pytest.approx(probability)
    # Abstaining on the model's doubt costs no generation; answering generates once.
    assert len(generator.calls) == (0 if abstains else 1)
    if abstains:
        assert answer.text == NO_ANSWER and answer.passages


def test_refusal_probability_is_not_measured_without_a_scoring_backend(index_dir: Path, embedder) -> None:
    answer = assistant_with(index_dir, embedder, "Mount Erebus was first climbed in 1908 [1].").ask(QUESTION)
    assert answer.refusal_probability is None and not answer.abstained


def test_closing_the_stream_stops_the_model_and_frees_it(index_dir: Path, embedder) -> None:
    generator = ScriptedGenerator("Mount Erebus was first climbed in 1908 [1].", "Erebus [1].")
    assistant = Assistant(
        Settings(index_dir=index_dir, top_k=2, min_relevance=0.1), embedder=embedder, generator=generator
    )
    stream = assistant.ask_stream(QUESTION)
    assert next(stream) == "Mount"
    stream.close()
    assert generator.stopped and not assistant.answerer.generation_lock.locked()
    assert assistant.ask(QUESTION).text == "Erebus [1]."
