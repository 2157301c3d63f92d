"""Follow-up questions become standalone questions; without history nothing is asked of the model."""

from __future__ import annotations

from fakes import ScriptedGenerator

from rag.rewriting import HISTORY_TURNS, rewrite_messages, standalone_question

HISTORY = [
    {"role": "user", "content": "How many people lived in Warsaw in 2023?"},
    {"role": "assistant", "content": "About 1.86 million [1]."},
]


def test_follow_up_is_rewritten() -> None:
    generator = ScriptedGenerator('"How many people lived in Warsaw in 2024?"\nextra line')
    assert (
        standalone_question(generator, "and in 2024?", HISTORY) == "How many people lived in Warsaw in 2024?"
    )


def test_without_history_the_question_stands_and_the_model_is_not_called() -> None:
    generator = ScriptedGenerator("anything")
    assert standalone_question(generator, "What is Warsaw?", None) == "What is Warsaw?"
    assert (
        standalone_question(generator, "What is Warsaw?", [{"role": "user", "content": " "}])
        == "What is Warsaw?"
    )
    assert generator.calls == []


def test_an_empty_rewrite_keeps_the_question() -> None:
    assert standalone_question(ScriptedGenerator(""), "and in 2024?", HISTORY) == "and in 2024?"


def test_prompt_holds_recent_turns_without_citation_markers() -> None:
    history = [{"role": "user", "content": f"turn {i}"} for i in range(10)] + HISTORY
    prompt = rewrite_messages("and in 2024?", history)[-1]["content"]
    assert "[1]" not in prompt and "About 1.86 million" in prompt and "turn 0" not in prompt
    assert prompt.count("\n") >= HISTORY_TURNS and prompt.endswith("Last question: and in 2024?")
