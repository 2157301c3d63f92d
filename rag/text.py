"""Text rules every module shares: the sentence splitter, the stemmer, the stop words, content terms
and the citation pattern of answers (`[1]`, `[1, 2]`, `[1; 3]`, `[1][2]`)."""

from __future__ import annotations

import functools
import re

CITATION = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
"""One citation marker: `[1]`, `[1, 2]` or `[1; 3]`; group 1 holds the numbers.
`web/static/chat.js` renders the same pattern: change both together."""
_CITATION_RUN = re.compile(rf"(?:\s*{CITATION.pattern})+")

_STOP = re.compile(r"[.!?]+[\"')\u201d\u2019]*")
_NEXT_SENTENCE = re.compile(r"\s+[\"'(\u201c]?[A-Z0-9]")
# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    ["e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "fig", "al", "approx", "u.s"]
    + ["jr", "sr", "inc", "ltd", "co", "mt"]
)

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,][0-9]+)*")
STOP_WORDS = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "of", "at", "by", "for", "with", "about", "against"]
    + ["between", "into", "through", "during", "before", "after", "above", "below", "to", "from", "up"]
    + ["down", "in", "out", "on", "off", "over", "under", "again", "further", "then", "once", "here"]
    + ["there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most"]
    + ["other", "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than", "too", "very"]
    + ["s", "t", "can", "will", "just", "don", "should", "now", "is", "are", "was", "were", "be", "been"]
    + ["being", "have", "has", "had", "having", "do", "does", "did", "doing", "i", "me", "my", "we", "our"]
    + ["you", "your", "he", "him", "his", "she", "her", "it", "its", "they", "them", "their", "what"]
    + ["which", "who", "whom", "this", "that", "these", "those", "am", "would", "could", "also", "as"]
    + ["while", "because", "until", "one"]
)
"""English stop words, dropped by BM25 and by the support checker's content terms."""


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in `text`, in order of first appearance (`[1]`, `[2, 3]`, `[1][4]`)."""
    seen: list[int] = []
    for group in CITATION.finditer(text):
        for number in re.split(r"[,;]", group.group(1)):
            n = int(number)
            if n not in seen:
                seen.append(n)
    return seen


def strip_citations(text: str) -> str:
    """`text` without citation markers and the spaces they leave before punctuation."""
    return re.sub(r"\s+([.,;:!?])", r"\1", CITATION.sub("", text)).strip()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`, stripped of surrounding whitespace; together they
    hold every non-whitespace character. Citation markers right after a full stop stay with the
    sentence they follow.

    A line break always ends a sentence. A stop ends one at the end of a line, or when a capital,
    digit or quote follows; not after a known abbreviation or a single initial (decimals such as 3.5
    never split).
    """
    spans: list[tuple[int, int]] = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        line = raw.splitlines()[0]
        start = 0
        for stop in _STOP.finditer(line):
            end = stop.end()
            trailing = _CITATION_RUN.match(line, end)
            if trailing:
                end = trailing.end()
            rest = line[end:]
            if rest.strip() and not _NEXT_SENTENCE.match(rest):
                continue
            words = line[start : stop.start()].split()
            last = words[-1].lower() if words else ""
            if stop.group(0) == "." and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
                continue
            spans.extend(_stripped(line, start, end, offset))
            start = end
        spans.extend(_stripped(line, start, len(line), offset))
        offset += len(raw)
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` (see `sentence_spans`)."""
    return [text[start:end] for start, end in sentence_spans(text)]


def _stripped(line: str, start: int, end: int, offset: int) -> list[tuple[int, int]]:
    """The span of `line[start:end]` without surrounding whitespace, shifted by `offset`; none if blank."""
    piece = line[start:end]
    stripped = piece.strip()
    if not stripped:
        return []
    lead = offset + start + len(piece) - len(piece.lstrip())
    return [(lead, lead + len(stripped))]


@functools.lru_cache(maxsize=1)
def stemmer():  # noqa: ANN201
    """The English Snowball stemmer (PyStemmer), loaded once."""
    import Stemmer

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-cased content words and numbers of `text` (stop words dropped)."""
    words = [w.lower() for w in _WORD.findall(text)]
    words = [w for w in words if w not in STOP_WORDS]
    return [w if w[0].isdigit() else s for w, s in zip(words, stemmer().stemWords(words), strict=True)]
