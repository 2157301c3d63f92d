"""Structure-aware chunking: sections, then paragraphs, then sentences, packed up to a token budget.

Sizes are counted in the embedder's own tokens, so a chunk never overflows its window. Every chunk
is a slice of the document text (`text == document.text[start:end]`) that starts at a sentence or block
boundary: lines wrapped inside a sentence are read as one sentence, and a sentence too long for the
budget is cut at its line breaks before anywhere else. Heading lines are left out of the text (they are
the chunk's `heading_path`, shown apart); together the chunks cover every other non-whitespace character
of the document.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.text import sentence_spans
from rag.types import Chunk, Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_BLOCK_LINE = re.compile(r"\s*(?:[-*+>|#]|\d+[.)]\s|```|~~~)")
"""A line that starts a block of its own (list item, quote, table row, heading, fence): never a wrapped
continuation of the line before."""
_SENTENCE_END = re.compile(r"[.!?:;][\"')\]]*(?:\s*\[\d+\])*\s*$")
_SETEXT_UNDERLINE = re.compile(r"[ \t]*(?:=+|-+)[ \t]*")

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


def unwrapped(text: str) -> str:
    """`text` with the line breaks that wrap a sentence (a line that ends without a stop, followed by a
    line that starts no block, outside code fences) made spaces: the same length, so offsets hold."""
    lines = text.split("\n")
    fenced = False
    joined = []
    for line, following in zip(lines, lines[1:]):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        wraps = not fenced and line.strip() and following.strip() and not _SENTENCE_END.search(line)
        wraps = wraps and not _BLOCK_LINE.match(following) and not line.lstrip().startswith(("#", "|"))
        wraps = wraps and not _SETEXT_UNDERLINE.fullmatch(following)
        joined.append(line + (" " if wraps else "\n"))
    return "".join(joined) + lines[-1]


def heading_lines(document: Document) -> list[tuple[int, int]]:
    """The spans of the lines that are a section's heading (its `#` marks or setext underline included):
    the heading is the chunk's context (`heading_path`), not a sentence of its text."""
    text = document.text
    spans = []
    for section in document.sections:
        if not section.path or not 0 <= section.start < len(text):
            continue
        line_start = text.rfind("\n", 0, section.start) + 1
        line_end = text.find("\n", section.start)
        line_end = len(text) if line_end < 0 else line_end
        line = text[line_start:line_end].strip().strip("#").strip()
        if " ".join(line.split()) != " ".join(section.path[-1].split()):
            continue
        underline_end = text.find("\n", line_end + 1)
        underline_end = len(text) if underline_end < 0 else underline_end
        if line_end < len(text) and _SETEXT_UNDERLINE.fullmatch(text[line_end + 1 : underline_end]):
            line_end = underline_end
        spans.append((line_start, line_end))
    return spans


def _units(document: Document) -> list[_Unit]:
    """Split the text into sentence units, marking section and paragraph starts; heading lines are left
    out (unless the document holds nothing else)."""
    text = document.text
    headings = heading_lines(document)
    # A heading line is never joined to the lines around it as a wrapped sentence.
    line_ends = {i for start, end in headings for i in (start - 1, end) if 0 <= i < len(text)}
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
            paragraph = list(unwrapped(text[p_start:p_end]))
            for i in line_ends:
                if p_start <= i < p_end:
                    paragraph[i - p_start] = text[i]
            for s_start, s_end in sentence_spans("".join(paragraph)):
                units.append(_Unit(p_start + s_start, p_start + s_end, strength))
                strength = SENTENCE
            if strength == SENTENCE:
                strength = PARAGRAPH
    if not headings:
        return units
    kept: list[_Unit] = []
    carried = SENTENCE
    for unit in units:
        if any(start <= unit.start and unit.end <= end for start, end in headings):
            carried = max(carried, unit.strength)  # the break before a heading moves to what follows it
            continue
        kept.append(_Unit(unit.start, unit.end, max(unit.strength, carried)))
        carried = SENTENCE
    return kept or units


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
            spans = self._split_long(text, unit)
            piece_counts = self.counter.count([text[a:b] for a, b in spans])
            for i, ((a, b), n) in enumerate(zip(spans, piece_counts)):
                sized.append(_Unit(a, b, unit.strength if i == 0 else SENTENCE, min(n, self.max_tokens)))
        return sized

    def _split_long(self, text: str, unit: _Unit) -> list[tuple[int, int]]:
        """Spans of a unit longer than the budget: its lines packed up to the budget, and only a line
        longer than the budget cut along token boundaries."""
        lines = []
        offset = unit.start
        for line in text[unit.start : unit.end].split("\n"):
            span = _trimmed(text, offset, offset + len(line))
            offset += len(line) + 1
            if span is not None:
                lines.append(span)
        counts = self.counter.count([text[a:b] for a, b in lines])
        spans: list[tuple[int, int]] = []
        packed: tuple[int, int] | None = None
        packed_tokens = 0
        for (a, b), tokens in zip(lines, counts):
            if tokens > self.max_tokens:
                if packed is not None:
                    spans.append(packed)
                    packed, packed_tokens = None, 0
                pieces = self.counter.split(text[a:b], self.max_tokens)
                spans.extend(s for s in (_trimmed(text, a + x, a + y) for x, y in pieces) if s is not None)
            elif packed is not None and packed_tokens + tokens <= self.max_tokens:
                packed, packed_tokens = (packed[0], b), packed_tokens + tokens
            else:
                if packed is not None:
                    spans.append(packed)
                packed, packed_tokens = (a, b), tokens
        if packed is not None:
            spans.append(packed)
        return spans

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
