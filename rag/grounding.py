"""Prompting with numbered passages, and turning the model's `[n]` markers into citations."""

from __future__ import annotations

import re

from rag.types import Citation, Passage

NO_ANSWER = "The documents do not contain an answer to this question."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources the user gives you. "
    "Cite the source of every sentence with its number in square brackets, like [1] or [2][3]. "
    "Never use outside knowledge. "
    f"If the sources do not contain the answer, reply exactly: {NO_ANSWER}"
)

# Two worked turns (one answer with a citation, one refusal): a 1.5B model follows a demonstration far
# more reliably than an instruction alone (without them it often dropped its citations).
_DEMONSTRATION = [
    {
        "role": "user",
        "content": "Sources:\n[1] Lighthouse log: The Skerry lighthouse was automated in 1987 and has had no "
        "keeper since.\n\n[2] Island guide: Ferries to the island run twice a day in summer and once a day in "
        "winter.\n\nQuestion: How often do ferries run in winter?",
    },
    {"role": "assistant", "content": "Ferries run once a day in winter [2]."},
    {
        "role": "user",
        "content": "Sources:\n[1] Lighthouse log: The Skerry lighthouse was automated in 1987 and has had no "
        "keeper since.\n\nQuestion: How tall is the Skerry lighthouse?",
    },
    {"role": "assistant", "content": NO_ANSWER},
]

_CITATION_GROUP = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_REFUSAL = re.compile(
    r"(documents|sources|context|passages) (do not|don't|does not|doesn't) (contain|say|mention|provide|include)"
    r"|\bI (do not|don't) know\b|\bnot (mentioned|stated|provided) in the (sources|documents)",
    re.IGNORECASE,
)


def format_passage(n: int, passage: Passage) -> str:
    """One numbered source as the model sees it: number, title (and page), text on one line."""
    where = passage.title
    if passage.chunk.page is not None:
        where += f", page {passage.chunk.page}"
    return f"[{n}] {where}: {' '.join(passage.chunk.text.split())}"


def build_messages(question: str, passages: list[Passage]) -> list[dict[str, str]]:
    """Chat messages asking the question over numbered passages [1]..[k], after the demonstration."""
    sources = "\n\n".join(format_passage(n, p) for n, p in enumerate(passages, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *_DEMONSTRATION,
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question.strip()}"},
    ]


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in `text`, in order of first appearance (`[1]`, `[2, 3]`, `[1][4]`)."""
    seen: list[int] = []
    for group in _CITATION_GROUP.finditer(text):
        for number in re.split(r"[,;]", group.group(1)):
            n = int(number)
            if n not in seen:
                seen.append(n)
    return seen


def is_refusal(text: str) -> bool:
    """Whether the model said the sources do not hold the answer."""
    return bool(_REFUSAL.search(text))


def citations_for(text: str, passages: list[Passage]) -> list[Citation]:
    """Citations for the valid `[n]` markers of `text`; markers of passages not given are ignored."""
    citations = []
    for n in cited_numbers(text):
        if not 1 <= n <= len(passages):
            continue
        citations.append(citation_of(n, passages[n - 1]))
    return citations


def citation_of(n: int, passage: Passage) -> Citation:
    chunk = passage.chunk
    return Citation(
        n=n,
        document=chunk.doc_id,
        title=passage.title,
        page=chunk.page,
        start=chunk.start,
        end=chunk.end,
        quote=chunk.text,
        score=round(passage.score, 4),
    )
