"""Structure-aware chunking: sections, then paragraphs, then sentences, packed up to a token budget.

Sizes are counted in the embedder's own tokens, so a chunk never overflows its window. Every chunk
is a slice of the document text (`text == document.text[start:end]`), and together the chunks
cover every non-whitespace character of the document.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.text import sentence_spans
from rag.types import Chunk, Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")

SECTION, PARAGRAPH, SENTENCE = 3, 2, 1


class TokenCounter(Protocol):
    """Counts and splits text in the tokens of a model."""

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, without special tokens."""
        ...

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        """Contiguous character spans of `text`, each holding at most `max_tokens` tokens."""
        ...


class WordCounter:
    """A tokenizer-free counter: one token per whitespace-separated word (for tests and fallbacks)."""

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        starts = [m.start() for m in re.finditer(r"\S+", text)]
        cuts = starts[max_tokens::max_tokens]
        bounds = [0, *cuts, len(text)]
        return [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b]


@dataclass(frozen=True)
class _Unit:
    """A sentence-sized span of the text, with how strongly a chunk should break before it."""

    start: int
    end: int
    strength: int
    tokens: int = 0


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    lead = len(piece) - len(piece.lstrip())
    return start + lead, start + lead + len(stripped)


def _units(document: Document) -> list[_Unit]:
    """Split the text into sentence units, marking section and paragraph starts."""
    text = document.text
    section_starts = sorted({s.start for s in document.sections if 0 < s.start < len(text)})
    bounds = [0, *section_starts, len(text)]
    units: list[_Unit] = []
    for block_start, block_end in zip(bounds, bounds[1:]):
        strength = SECTION
        para_start = block_start
        para_spans = []
        for match in _PARAGRAPH_BREAK.finditer(text, block_start, block_end):
            para_spans.append((para_start, match.start()))
            para_start = match.end()
        para_spans.append((para_start, block_end))
        for p_start, p_end in para_spans:
            for s_start, s_end in sentence_spans(text[p_start:p_end]):
                units.append(_Unit(p_start + s_start, p_start + s_end, strength))
                strength = SENTENCE
            if strength == SENTENCE:
                strength = PARAGRAPH
    return units


class Chunker:
    """Packs sentence units into chunks of at most `max_tokens`, breaking preferably at structure."""

    def __init__(self, counter: TokenCounter, *, max_tokens: int = 200, overlap_tokens: int = 32) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be positive")
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError("overlap_tokens must be in [0, max_tokens)")
        self.counter = counter
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def _sized_units(self, document: Document) -> list[_Unit]:
        """Units with token counts; a unit longer than the budget is split along token boundaries."""
        text = document.text
        units = _units(document)
        counts = self.counter.count([text[u.start : u.end] for u in units])
        sized: list[_Unit] = []
        for unit, tokens in zip(units, counts):
            if tokens <= self.max_tokens:
                sized.append(_Unit(unit.start, unit.end, unit.strength, tokens))
                continue
            pieces = self.counter.split(text[unit.start : unit.end], self.max_tokens)
            spans = [_trimmed(text, unit.start + a, unit.start + b) for a, b in pieces]
            spans = [s for s in spans if s is not None]
            piece_counts = self.counter.count([text[a:b] for a, b in spans])
            for i, ((a, b), n) in enumerate(zip(spans, piece_counts)):
                sized.append(_Unit(a, b, unit.strength if i == 0 else SENTENCE, min(n, self.max_tokens)))
        return sized

    def chunk(self, document: Document) -> list[Chunk]:
        """Cut a document into chunks that keep its offsets, page and heading path."""
        units = self._sized_units(document)
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        current_tokens = 0
        for unit in units:
            fits = current_tokens + unit.tokens <= self.max_tokens
            section_break = unit.strength == SECTION and current_tokens >= self.max_tokens // 4
            if current and (not fits or section_break):
                groups.append(current)
                carried: list[_Unit] = []
                if not section_break and self.overlap_tokens:
                    carried_tokens = 0
                    for prev in reversed(current[1:]):
                        if carried_tokens + prev.tokens > self.overlap_tokens:
                            break
                        if carried_tokens + prev.tokens + unit.tokens > self.max_tokens:
                            break
                        carried.insert(0, prev)
                        carried_tokens += prev.tokens
                current, current_tokens = carried, sum(u.tokens for u in carried)
            current.append(unit)
            current_tokens += unit.tokens
        if current:
            groups.append(current)
        chunks = []
        for group in groups:
            start, end = group[0].start, group[-1].end
            chunks.append(
                Chunk(
                    doc_id=document.id,
                    text=document.text[start:end],
                    start=start,
                    end=end,
                    page=document.page_at(start),
                    heading_path=document.heading_path_at(start),
                )
            )
        return chunks
