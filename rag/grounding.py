"""Prompting with numbered passages, and turning the model's `[n]` markers into citations."""

from __future__ import annotations

import re

from rag.types import Citation, Passage

NO_ANSWER = "The documents do not contain an answer to this question."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources you are given. "
    "After each sentence, cite the sources that support it, like [1] or [2][3]. "
    "Do not use outside knowledge. If the sources do not contain the answer, reply exactly: "
    f'"{NO_ANSWER}"'
)

_CITATION_GROUP = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_REFUSAL = re.compile(
    r"(documents|sources|context|passages) (do not|don't|does not|doesn't) (contain|say|mention|provide|include)"
    r"|\bI (do not|don't) know\b|\bnot (mentioned|stated|provided) in the (sources|documents)",
    re.IGNORECASE,
)


def format_passage(n: int, passage: Passage) -> str:
    """One numbered source as the model sees it: number, title (and page), text."""
    where = passage.title
    if passage.chunk.page is not None:
        where += f", page {passage.chunk.page}"
    if passage.chunk.heading_path:
        where += f", section: {' > '.join(passage.chunk.heading_path)}"
    return f"[{n}] ({where})\n{passage.chunk.text.strip()}"


def build_messages(question: str, passages: list[Passage]) -> list[dict[str, str]]:
    """Chat messages asking the question over numbered passages [1]..[k]."""
    sources = "\n\n".join(format_passage(n, p) for n, p in enumerate(passages, start=1))
    user = f"Sources:\n\n{sources}\n\nQuestion: {question.strip()}\nAnswer (cite sources like [1]):"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


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
