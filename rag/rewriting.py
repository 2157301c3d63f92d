"""Follow-up questions: rewritten with the chat history into one standalone question before retrieval."""

from __future__ import annotations

from rag.generation import Generator
from rag.text import strip_citations

_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace "
    "pronouns and elliptical phrases with what they refer to. Reply with the rewritten question only."
)
_DEMONSTRATION = [
    {
        "role": "user",
        "content": "Conversation:\nuser: When was the Skerry lighthouse automated?\nassistant: It was "
        "automated in 1987 [1].\n\nLast question: and who built it?",
    },
    {"role": "assistant", "content": "Who built the Skerry lighthouse?"},
]
HISTORY_TURNS = 6
"""Most recent turns of the history shown to the rewriter (older ones rarely matter and cost prefill)."""


def rewrite_messages(question: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
    """Chat messages asking the generator for a standalone version of `question`."""
    lines = []
    for turn in history[-HISTORY_TURNS:]:
        role = turn.get("role", "user")
        content = strip_citations(turn.get("content", ""))
        if role in ("user", "assistant") and content:
            lines.append(f"{role}: {' '.join(content.split())[:600]}")
    conversation = "\n".join(lines)
    return [
        {"role": "system", "content": _SYSTEM},
        *_DEMONSTRATION,
        {"role": "user", "content": f"Conversation:\n{conversation}\n\nLast question: {question.strip()}"},
    ]


def standalone_question(generator: Generator, question: str, history: list[dict[str, str]] | None) -> str:
    """`question` rewritten to stand alone given `history`; unchanged when there is no usable history."""
    if not history or not any(turn.get("content", "").strip() for turn in history):
        return question
    stream = generator.stream(rewrite_messages(question, history), max_tokens=48, temperature=0.0)
    text = "".join(stream).strip()
    rewritten = text.splitlines()[0].strip().strip('"') if text else ""
    return rewritten if len(rewritten) >= 3 else question
