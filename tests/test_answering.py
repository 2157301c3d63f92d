"""The ask path with fakes (fast): grounding modes, abstention, follow-up rewriting, the typed answer
stream; and, with the real embedder and evidence checker (slow), flag mode and extractive answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder, HesitantGenerator, KeywordChecker, ScriptedGenerator

from rag.assistant import Assistant
from rag.config import Settings
from rag.embeddings import Embedder
from rag.generation import Generator
from rag.grounding import NO_ANSWER
from rag.types import Answer

VOLCANO = (
    "Mount Erebus is the southernmost active volcano on Earth, in Antarctica. It was first climbed in 1908."
)
BREAD = "Sourdough bread rises because wild yeast and lactobacilli ferment the dough."
QUESTION = "When was the Erebus volcano first climbed?"
UNRELATED = "What is the airspeed of an unladen swallow?"
SETTINGS = {"top_k": 2, "min_relevance": 0.1, "support_threshold": 0.5}


def build_index(folder: Path, embedder: Embedder) -> Path:
    docs = folder / "docs"
    docs.mkdir()
    (docs / "volcano.txt").write_text(VOLCANO)
    (docs / "bread.txt").write_text(BREAD)
    Assistant(Settings(index_dir=folder / "index"), embedder=embedder).ingest([docs])
    return folder / "index"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index(tmp_path_factory.mktemp("answering"), BagOfWordsEmbedder())


def assistant_with(
    index_dir: Path, *replies: str, generator: Generator | None = None, **settings: object
) -> Assistant:
    return Assistant(
        Settings(index_dir=index_dir, **{**SETTINGS, **settings}),
        embedder=BagOfWordsEmbedder(),
        generator=generator or ScriptedGenerator(*replies),
        support_checker=KeywordChecker(),
    )


def volcano_number(answer: Answer) -> int:
    return next(n for n, p in enumerate(answer.passages, start=1) if p.chunk.doc_id.endswith("volcano.txt"))


@pytest.fixture(scope="module")
def n(index_dir: Path) -> int:
    """The number the prompt gives the volcano passage."""
    return volcano_number(assistant_with(index_dir, NO_ANSWER).ask(QUESTION))


def test_flag_marks_unsupported_sentences_and_keeps_them(index_dir: Path, n: int) -> None:
    reply = f"Mount Erebus was first climbed in 1908 [{n}]. It has a ski resort with lifts [{n}]. It is cold."
    answer = assistant_with(index_dir, reply).ask(QUESTION)
    assert [s.supported for s in answer.sentences] == [True, False, False]
    assert answer.text == reply and not answer.abstained
    assert [c.n for c in answer.citations] == [n]
    assert "support_seconds" in answer.timings


def test_strict_removes_unsupported_sentences(index_dir: Path, n: int) -> None:
    reply = f"Mount Erebus was first climbed in 1908 [{n}]. It has a ski resort with twelve lifts [{n}]."
    answer = assistant_with(index_dir, reply).ask(QUESTION, grounding_mode="strict")
    assert answer.text == f"Mount Erebus was first climbed in 1908 [{n}]."
    assert all(s.supported for s in answer.sentences)


def test_strict_abstains_when_nothing_is_supported(index_dir: Path) -> None:
    answer = assistant_with(index_dir, "Penguins invented the telescope in 1402 [1].").ask(
        QUESTION, grounding_mode="strict"
    )
    assert answer.abstained and answer.text == NO_ANSWER and answer.passages


def test_off_skips_the_check(index_dir: Path) -> None:
    answer = assistant_with(index_dir, "Penguins invented the telescope [1].").ask(
        QUESTION, grounding_mode="off"
    )
    assert not answer.abstained and answer.sentences[0].supported is None
    assert "support_seconds" not in answer.timings


def test_the_models_refusal_is_an_abstention(index_dir: Path) -> None:
    answer = assistant_with(index_dir, NO_ANSWER).ask(QUESTION)
    assert answer.abstained and answer.text == NO_ANSWER and not answer.sentences


def test_weak_evidence_abstains_without_the_model(index_dir: Path) -> None:
    assistant = assistant_with(index_dir, min_relevance=0.99)
    answer = assistant.ask(UNRELATED)
    assert answer.abstained and "generation_seconds" not in answer.timings and answer.passages
    assert assistant.generator.calls == []


def test_stream_yields_tokens_then_the_answer(index_dir: Path, n: int) -> None:
    assistant = assistant_with(index_dir, f"Erebus was first climbed in 1908 [{n}].")
    stream = assistant.ask_stream(QUESTION)
    with pytest.raises(RuntimeError, match="not written yet"):
        stream.answer  # noqa: B018
    tokens = list(stream)
    assert len(tokens) > 2 and all(isinstance(t, str) for t in tokens)
    assert "".join(tokens) == stream.answer.text
    assert stream.answer.sentences[0].supported is True
    assert stream.answer.timings["completion_tokens"] == len(tokens)
    assert list(stream) == [] and stream.result() is stream.answer, "a finished stream keeps its answer"


def test_an_abstaining_stream_yields_no_tokens(index_dir: Path) -> None:
    stream = assistant_with(index_dir, min_relevance=0.99).ask_stream(UNRELATED)
    assert list(stream) == [] and stream.answer.abstained


def test_closing_the_stream_stops_the_model_and_frees_it(index_dir: Path) -> None:
    assistant = assistant_with(index_dir, "Mount Erebus was first climbed in 1908 [1].", "Erebus [1].")
    stream = assistant.ask_stream(QUESTION)
    assert next(stream) == "Mount"
    stream.close()
    assert assistant.generator.stopped and not assistant.answerer.generation_lock.locked()
    assert assistant.ask(QUESTION).text == "Erebus [1]."


def test_bad_questions_are_refused_when_the_stream_is_read(index_dir: Path) -> None:
    from rag.errors import InvalidInputError

    stream = assistant_with(index_dir).ask_stream("   ")
    with pytest.raises(InvalidInputError, match="empty"):
        next(stream)
    with pytest.raises(InvalidInputError, match="k must be"):
        assistant_with(index_dir).ask(QUESTION, k=51)


def test_follow_up_is_rewritten_before_retrieval(index_dir: Path) -> None:
    assistant = assistant_with(index_dir, "How does sourdough bread rise?", "It rises from wild yeast [1].")
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
    index_dir: Path, probability: float, abstains: bool
) -> None:
    generator = HesitantGenerator(probability, "Mount Erebus was first climbed in 1908 [1].")
    answer = assistant_with(index_dir, generator=generator, refusal_threshold=0.5).ask(QUESTION)
    # The refusal is read before writing; an answer written is then judged (Yes / No, `rag/signals/`).
    assert generator.scored == ([NO_ANSWER] if abstains else [NO_ANSWER, "Yes", "No"])
    assert answer.abstained is abstains
    assert answer.refusal_probability == pytest.approx(probability)
    assert answer.to_dict()["refusal_probability"] == pytest.approx(probability)
    # Abstaining on the model's doubt costs no generation; answering generates once.
    assert len(generator.calls) == (0 if abstains else 1)
    if abstains:
        assert answer.text == NO_ANSWER and answer.passages


def test_refusal_probability_is_not_measured_without_a_scoring_backend(index_dir: Path) -> None:
    answer = assistant_with(index_dir, "Mount Erebus was first climbed in 1908 [1].").ask(QUESTION)
    assert answer.refusal_probability is None and not answer.abstained


# With the real embedder and its evidence support checker

CLIMBED = "When was Mount Erebus first climbed?"


@pytest.fixture(scope="module")
def real_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    return build_index(tmp_path_factory.mktemp("answering-real"), embedder)


@pytest.mark.slow
def test_evidence_checker_flags_unsupported_sentences(real_index_dir: Path, embedder) -> None:
    settings = Settings(index_dir=real_index_dir, **SETTINGS)
    number = volcano_number(Assistant(settings, embedder=embedder).ask(CLIMBED, answer_mode="extractive"))
    reply = (
        f"Mount Erebus was first climbed in 1908 [{number}]. "
        f"It has a ski resort with twelve lifts [{number}]. It is cold."
    )
    answer = Assistant(settings, embedder=embedder, generator=ScriptedGenerator(reply)).ask(CLIMBED)
    assert [s.supported for s in answer.sentences] == [True, False, False]
    assert answer.text == reply and not answer.abstained


@pytest.mark.slow
def test_extractive_mode_needs_no_generator(real_index_dir: Path, embedder) -> None:
    generator = ScriptedGenerator()
    settings = Settings(index_dir=real_index_dir, answer_mode="extractive", **SETTINGS)
    answer = Assistant(settings, embedder=embedder, generator=generator).ask(CLIMBED)
    assert "1908" in answer.text and answer.citations and answer.sentences[0].supported
    assert generator.calls == []
