"""Follow-up questions become standalone questions; without history nothing is asked of the model."""

from __future__ import annotations

from rag.generation import GenerationStream
from rag.rewriting import HISTORY_TURNS, rewrite_messages, standalone_question


class Reply:
    name = "reply"

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        self.calls += 1
        return GenerationStream(iter([self.text]))

    def count_tokens(self, text: str) -> int:
        return len(text.split())


HISTORY = [
    {"role": "user", "content": "How many people lived in Warsaw in 2023?"},
    {"role": "assistant", "content": "About 1.86 million [1]."},
]


def test_follow_up_is_rewritten() -> None:
    generator = Reply('"How many people lived in Warsaw in 2024?"\nextra line')
    assert (
        standalone_question(generator, "and in 2024?", HISTORY) == "How many people lived in Warsaw in 2024?"
    )


def test_without_history_the_question_stands_and_the_model_is_not_called() -> None:
    generator = Reply("anything")
    assert standalone_question(generator, "What is Warsaw?", None) == "What is Warsaw?"
    assert (
        standalone_question(generator, "What is Warsaw?", [{"role": "user", "content": " "}])
        == "What is Warsaw?"
    )
    assert generator.calls == 0


def test_an_empty_rewrite_keeps_the_question() -> None:
    assert standalone_question(Reply(""), "and in 2024?", HISTORY) == "and in 2024?"


def test_prompt_holds_recent_turns_without_citation_markers() -> None:
    history = [{"role": "user", "content": f"turn {i}"} for i in range(10)] + HISTORY
    prompt = rewrite_messages("and in 2024?", history)[-1]["content"]
    assert "[1]" not in prompt and "About 1.86 million" in prompt and "turn 0" not in prompt
    assert prompt.count("\n") >= HISTORY_TURNS and prompt.endswith("Last question: and in 2024?")
