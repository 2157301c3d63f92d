"""Data types shared by every layer: documents, chunks, passages, citations and answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PageSpan:
    """A page of a document as a character range of its text (pages are numbered from 1)."""

    page: int
    start: int
    end: int


@dataclass(frozen=True)
class Section:
    """A heading and the character range of the text it governs; `path` runs from the top heading down."""

    path: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A parsed document: its plain text plus page and section boundaries as character offsets."""

    id: str
    source: str
    title: str
    text: str
    pages: tuple[PageSpan, ...] = ()
    sections: tuple[Section, ...] = ()
    content_hash: str = ""

    def page_at(self, offset: int) -> int | None:
        """The page holding the character at `offset`, or None for formats without pages."""
        for span in self.pages:
            if span.start <= offset < span.end:
                return span.page
        return self.pages[-1].page if self.pages and offset >= self.pages[-1].start else None

    def page_range(self, start: int, end: int) -> tuple[int, int, int] | None:
        """The pages the span `start:end` runs over (first, last) and the page holding most of its
        characters (the page to open for it); None for formats without pages."""
        if not self.pages:
            return None
        first, last = self.page_at(start), self.page_at(max(start, end - 1))
        if first is None or last is None:
            return None
        spans = [s for s in self.pages if first <= s.page <= last]
        overlap = {s.page: min(end, s.end) - max(start, s.start) for s in spans}
        return first, last, max(overlap, key=lambda page: (overlap[page], -page))

    def heading_path_at(self, offset: int) -> tuple[str, ...]:
        """The deepest section path that contains the character at `offset`."""
        best: tuple[str, ...] = ()
        for section in self.sections:
            if section.start <= offset < section.end and len(section.path) >= len(best):
                best = section.path
        return best


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: `text == document.text[start:end]`."""

    doc_id: str
    text: str
    start: int
    end: int
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    id: int | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its relevance score and the provenance of its document.

    `score` is the ranking score of the retrieval mode (cosine, BM25, fused or reranked);
    `dense_score` is always the cosine similarity to the question, which the evidence gate reads.
    """

    chunk: Chunk
    score: float
    source: str
    title: str
    dense_score: float | None = None

    @property
    def relevance(self) -> float:
        """Cosine similarity to the question when known (comparable across modes), else the mode's score."""
        return self.dense_score if self.dense_score is not None else self.score


@dataclass(frozen=True)
class Citation:
    """A numbered source the answer cites: where the quoted passage lies and how relevant it was."""

    n: int
    document: str
    title: str
    page: int | None
    start: int
    end: int
    quote: str
    score: float
    page_start: int | None = None
    """First page the quote runs over; with `page_end`, the page range of a quote spanning pages. `page`
    is then the one holding most of the quote (None for formats without pages)."""
    page_end: int | None = None


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer, the source numbers it cites, and how well they support it.

    `invalid_citations` are numbers of sources never given to the model. `attributed`: the model left
    the sentence uncited, or cited passages that do not support it, and the support checker added the
    passage that supports it best.
    `supported` and `support` (0..1) stay None until a `SupportChecker` has scored the sentence
    (grounding mode `off`).
    """

    text: str
    citations: tuple[int, ...] = ()
    invalid_citations: tuple[int, ...] = ()
    supported: bool | None = None
    support: float | None = None
    attributed: bool = False
    issues: tuple[str, ...] = ()
    """Why the claim checks found the sentence unsupported, in plain words (empty: none found)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "attributed": self.attributed,
            "supported": self.supported,
            "support": None if self.support is None else round(self.support, 4),
            "issues": list(self.issues),
        }


@dataclass
class Answer:
    """The answer to a question, with its citations; `abstained` when the documents do not say.

    `sentences` hold the per-sentence citations and support checks (empty when abstained).
    """

    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    sentences: list[AnswerSentence] = field(default_factory=list)
    refusal_probability: float | None = None
    """The model's own probability of replying that the documents do not say (None: not measured)."""
    limitations: list[str] = field(default_factory=list)
    """What the model could not do for this answer and why (e.g. no token scores from a model server, so no
    refusal probability); empty when nothing was missing."""
    confidence: float | None = None
    """The calibrated probability that the answer is right and supported by its passages
    (`rag/signals/`; None: not read). An abstention keeps the confidence of the answer it withheld."""
    signals: dict[str, float] = field(default_factory=dict)
    """The confidence signals the calibrator read (`rag/signals/features.py`; not in the JSON)."""
    recovered: bool = False
    """The model said the documents do not answer, the signals said a passage does, and the answer is
    that passage's best sentence, taken extractively (a recovered false refusal)."""
    hidden_state: list[float] | None = None
    """The model's final hidden state at the end of the prompt (the probe's input; not in the JSON)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by `rag ask --json` and `POST /api/answer`."""
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [asdict(c) for c in self.citations],
            "timings": {name: round(value, 4) for name, value in self.timings.items()},
            "sentences": [sentence.to_dict() for sentence in self.sentences],
            "refusal_probability": (
                None if self.refusal_probability is None else round(self.refusal_probability, 4)
            ),
            "limitations": list(self.limitations),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "recovered": self.recovered,
        }


@dataclass
class FileFailure:
    """A file skipped during ingest and why."""

    path: str
    reason: str


@dataclass
class IngestReport:
    """What an ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    chunks_added: int = 0
    seconds: float = 0.0

    @property
    def documents_indexed(self) -> int:
        return len(self.added) + len(self.updated)
