"""Answering: question -> retrieve -> gate -> generate -> ground -> `Answer`, streamed as `AnswerStream`."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from collections.abc import Generator as Generator_
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from typing_extensions import TypedDict

from rag.compression import compress_passages
from rag.config import AnswerMode, GroundingMode, Settings
from rag.embeddings import Embedder
from rag.errors import InvalidInputError
from rag.extractive import extract_answer
from rag.generation import ContinuationScorer, Generator, HiddenStateReader
from rag.grounding import (
    NO_ANSWER,
    answer_citations,
    answer_sentences,
    attribute_citations,
    build_messages,
    check_sentences,
    citations_for,
    flag_contradicted,
    is_refusal,
    join_sentences,
    with_pages,
)
from rag.policy import GroundingPolicy
from rag.retrieval import RetrievalFilter, RetrievalMode, Retriever, evidence_score
from rag.rewriting import standalone_question
from rag.signals import DEFAULT_CALIBRATOR, Calibrator
from rag.signals.reader import Confidence, ConfidenceReader
from rag.support import SupportChecker
from rag.types import Answer, AnswerSentence, Citation, Passage

REFUSAL_PROBE_TOKENS = 4
"""Tokens of the refusal sentence whose probability is read ("The documents do not"): enough to tell it
from answers that merely start with "The"."""


class AskOptions(TypedDict, total=False):
    """Per-question options of `Assistant.ask` and `ask_stream`: earlier turns, and overrides of settings."""

    history: list[dict[str, str]] | None
    grounding_mode: GroundingMode | None
    answer_mode: AnswerMode | None
    retrieval_mode: RetrievalMode | None
    filters: RetrievalFilter | None
    instructions: str | None


class _Search(NamedTuple):
    """Where one question's passages are searched: the documents it is limited to, the retrieval mode."""

    filters: RetrievalFilter | None = None
    mode: RetrievalMode | None = None


@dataclass(frozen=True)
class AnswerStatus:
    """A step of the answer, reported as it begins (the chat shows them while the user waits)."""

    step: Literal["rewriting", "searching", "reading", "writing", "checking"]
    passages: int | None = None
    """How many passages the model reads (step `reading`)."""


class AnswerStream:
    """One answer as it is written: iterating yields the model's token strings; afterwards `.answer` is the
    final `Answer`. `next_item()` also returns the `AnswerStatus` steps. `close()` (same thread) or
    `cancel()` (any thread) stops generation and frees the model (a client that went away, a Stop)."""

    def __init__(self, steps: Generator_[str | AnswerStatus, None, Answer]) -> None:
        self._steps = steps
        self._answer: Answer | None = None
        self._cancelled = threading.Event()

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> str:
        while (item := self.next_item()) is not None:
            if isinstance(item, str):
                return item
        raise StopIteration

    def next_item(self) -> str | AnswerStatus | None:
        """The next token or step; None once the answer is written (or the stream was cancelled)."""
        if self._answer is not None or self._cancelled.is_set():
            return None
        try:
            item = next(self._steps)
        except StopIteration as finished:
            self._answer = finished.value
            return None
        if self._cancelled.is_set():  # cancelled from another thread while this step ran
            self._steps.close()
            return None
        return item

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop the answer from any thread: at once when idle, else when its running step returns."""
        self._cancelled.set()
        with contextlib.suppress(ValueError):  # running in another thread: `next_item` closes it after
            self._steps.close()

    @property
    def answer(self) -> Answer:
        """The final answer; only once iteration has ended."""
        if self._answer is None:
            raise RuntimeError("The answer is not written yet: iterate the stream (or call result()) first.")
        return self._answer

    def result(self) -> Answer:
        """Read the stream to its end and return the answer (the tokens are discarded)."""
        for _ in self:
            pass
        return self.answer

    def close(self) -> None:
        self._steps.close()

    def __enter__(self) -> AnswerStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_question(question: str, k: int | None, default_k: int) -> tuple[str, int]:
    """The question stripped and the number of passages, or InvalidInputError saying what is wrong."""
    question = (question or "").strip()
    if not question:
        raise InvalidInputError('The question is empty: ask something, e.g. rag ask "What is rag?"')
    k = default_k if k is None else k
    if not 1 <= k <= 50:
        raise InvalidInputError(f"k must be between 1 and 50, not {k}.")
    return question, k


class Answerer:
    """Answers questions from the index. Its components come from providers (zero-argument callables), so a
    question that abstains early never loads the model. One generation runs at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Callable[[], Embedder],
        retriever: Callable[[], Retriever],
        generator: Callable[[], Generator],
        support_checker: Callable[[], SupportChecker],
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.retriever = retriever
        self.generator = generator
        self.support_checker = support_checker
        self.generation_lock = threading.Lock()

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        filters: RetrievalFilter | None = None,
        mode: RetrievalMode | None = None,
    ) -> list[Passage]:
        question, k = check_question(question, k, self.settings.top_k)
        return self.retriever().retrieve(question, k, filters, mode)

    def stream(
        self,
        question: str,
        k: int | None = None,
        *,
        history: list[dict[str, str]] | None = None,
        grounding_mode: GroundingMode | None = None,
        answer_mode: AnswerMode | None = None,
        retrieval_mode: RetrievalMode | None = None,
        filters: RetrievalFilter | None = None,
        instructions: str | None = None,
    ) -> AnswerStream:
        """The answer to `question` as a stream; nothing runs until it is read (`Assistant.ask_stream`)."""
        search = _Search(filters, retrieval_mode)
        return AnswerStream(
            self._noting_limitations(
                self._answer(question, k, history, grounding_mode, answer_mode, search, instructions)
            )
        )

    def claim_context(self, question: str, extractive: bool) -> str | None:
        """The question short answers are checked with (see `claim_of`); None for sentence answers."""
        return question if self.settings.answer_style == "short" and not extractive else None

    def _answer(
        self,
        question: str,
        k: int | None,
        history: list[dict[str, str]] | None,
        grounding_mode: GroundingMode | None,
        answer_mode: AnswerMode | None,
        search: _Search | None = None,
        instructions: str | None = None,
    ) -> Generator_[str | AnswerStatus, None, Answer]:
        """One question's path, top to bottom: yields each step as it begins and the tokens while the model
        writes; returns the answer."""
        started = time.perf_counter()
        question, k = check_question(question, k, self.settings.top_k)
        policy = GroundingPolicy.from_settings(self.settings, grounding_mode)
        extractive = (answer_mode or self.settings.answer_mode) == "extractive"
        timings: dict[str, float] = {}
        if history and not extractive:
            yield AnswerStatus("rewriting")
            with self.generation_lock:
                question = standalone_question(self.generator(), question, history)
            timings["rewrite_seconds"] = time.perf_counter() - started
        search = search or _Search()
        yield AnswerStatus("searching")
        passages = self.retriever().retrieve(question, k, search.filters, search.mode)
        timings["retrieval_seconds"] = time.perf_counter() - started
        yield AnswerStatus("reading", passages=len(passages))
        if policy.gate_abstains(evidence_score(passages)):
            return _abstain(passages, timings, started)
        refusal: float | None = None
        messages: list[dict[str, str]] | None = None
        logprobs: list[float] = []
        hidden: list[float] | None = None
        if extractive:
            text = extract_answer(question, passages, self.embedder())
        else:
            passages = self._compressed(question, passages, timings)
            messages = build_messages(question, passages, self.settings.answer_style, instructions)
            refusal = self._refusal_probability(messages, timings)
            hidden = self._hidden_state(messages)
            if policy.refusal_abstains(refusal):
                return _abstain(passages, timings, started, refusal)
            yield AnswerStatus("writing")
            text = yield from self._generate(messages, timings, time.perf_counter() - started, logprobs)
        recovered: Confidence | None = None
        if not text or (is_refusal(text) and not citations_for(text, passages)):
            read = (
                self._confidence(
                    question,
                    passages,
                    messages,
                    text,
                    refusal,
                    logprobs,
                    timings,
                    refused=True,
                    hidden=hidden,
                )
                if text and messages is not None
                else None
            )
            if read is None or not self.settings.recover_refusals or not self.reader.recovers(question, read):
                return _abstain(passages, timings, started, refusal, read)
            text, recovered = read.extractive, read  # a false refusal: answered from the passage, marked
        sentences = answer_sentences(text, len(passages))
        if policy.checks_support:
            yield AnswerStatus("checking")
            checking = time.perf_counter()
            context = self.claim_context(question, extractive)
            checker, threshold = self.support_checker(), policy.support_threshold
            sentences = check_sentences(sentences, passages, checker, threshold, context)
            sentences = attribute_citations(
                sentences, passages, checker, self.settings.attribution_min_support, context
            )
            sentences = check_sentences(sentences, passages, checker, threshold, context)  # attributed ones
            if self.settings.claim_checks:
                sentences = flag_contradicted(sentences, passages, question)
            timings["support_seconds"] = time.perf_counter() - checking
        if policy.mode == "strict":
            kept = policy.kept(sentences)
            if kept is None:
                return _abstain(passages, timings, started)
            sentences = kept
            text = join_sentences(sentences)
        confidence = self._confidence(
            question,
            passages,
            messages,
            text,
            refusal,
            logprobs,
            timings,
            sentences=sentences,
            recovered=recovered,
            hidden=hidden,
        )
        if confidence is not None and policy.confidence_abstains(confidence.probability):
            return _abstain(passages, timings, started, refusal, confidence)
        timings["total_seconds"] = time.perf_counter() - started
        return Answer(
            text,
            abstained=False,
            citations=self._paged(answer_citations(text, sentences, passages)),
            timings=timings,
            passages=passages,
            sentences=sentences,
            refusal_probability=refusal,
            confidence=confidence.probability if confidence is not None else None,
            signals=confidence.signals if confidence is not None else {},
            recovered=recovered is not None,
            hidden_state=confidence.hidden_state if confidence is not None else None,
        )

    @functools.cached_property
    def reader(self) -> ConfidenceReader:
        """Reads each answer's confidence signals, with the configured (else the shipped) calibrator."""
        path = self.settings.calibrator_path
        calibrator = (
            Calibrator.load(path or DEFAULT_CALIBRATOR) if path or DEFAULT_CALIBRATOR.exists() else None
        )
        return ConfidenceReader(self.generator, self.embedder, calibrator, self.generation_lock)

    def _confidence(
        self,
        question: str,
        passages: list[Passage],
        messages: list[dict[str, str]] | None,
        text: str,
        refusal: float | None,
        logprobs: list[float],
        timings: dict[str, float],
        *,
        sentences: list[AnswerSentence] | None = None,
        refused: bool = False,
        recovered: Confidence | None = None,
        hidden: list[float] | None = None,
    ) -> Confidence | None:
        """The answer's signals and calibrated confidence (None with `confidence_signals` off); an answer
        recovered from a refusal keeps the judgement read after the refusal, and has no token scores."""
        if not self.settings.confidence_signals:
            return None
        return self.reader.read(
            question,
            passages,
            None if recovered is not None else messages,
            text,
            sentences=sentences or (),
            refusal=refusal,
            token_logprobs=() if recovered is not None else logprobs,
            refused=refused or recovered is not None,
            judge=recovered.signals.get("judge_logit") if recovered is not None else None,
            extractive=recovered.extractive if recovered is not None else None,
            hidden=hidden,
            timings=timings,
        )

    def _hidden_state(self, messages: list[dict[str, str]]) -> list[float] | None:
        """The model's hidden state at the end of the prompt (for the probe signal), read while the refusal
        probability evaluated that prompt; None with `confidence_signals` off or a backend without it."""
        generator = self.generator()
        if not self.settings.confidence_signals or not isinstance(generator, HiddenStateReader):
            return None
        with self.generation_lock:
            return generator.prompt_hidden_state(messages)

    def _compressed(self, question: str, passages: list[Passage], timings: dict[str, float]) -> list[Passage]:
        """The passages cut to the question's sentences within `prompt_passage_tokens` (0: as retrieved)."""
        budget = self.settings.prompt_passage_tokens
        if not budget:
            return passages
        started = time.perf_counter()
        passages = compress_passages(question, passages, self.embedder(), budget)
        timings["compression_seconds"] = time.perf_counter() - started
        return passages

    def _paged(self, citations: list[Citation]) -> list[Citation]:
        """Citations of documents with pages (PDF) with the page range of their quote (`with_pages`)."""
        if all(c.page is None for c in citations):
            return citations
        catalog = self.retriever().index.catalog
        documents = {c.document: catalog.document(c.document) for c in citations if c.page is not None}
        return [with_pages(c, document) if (document := documents.get(c.document)) else c for c in citations]

    def _noting_limitations(self, steps: Generator_[str, None, Answer]) -> Generator_[str, None, Answer]:
        """`steps`, with the answer saying what its model could not do, once the model has been asked (a
        model server without token scores: no refusal probability), so no reader mistakes it for 0."""
        answer = yield from steps
        if "first_token_seconds" in answer.timings or "refusal_check_seconds" in answer.timings:
            generator = self.generator()
            if not isinstance(generator, ContinuationScorer):
                answer.limitations.extend(
                    getattr(generator, "limitations", None)
                    or [f"no token scores from {generator.name}: the refusal probability is not measured"]
                )
        return answer

    def _refusal_probability(self, messages: list[dict[str, str]], timings: dict[str, float]) -> float | None:
        """The model's probability of replying with the refusal, when its backend can score a continuation.

        It reads the model's belief that the sources lack the answer even when greedy decoding would go on
        to answer anyway; the prompt's prefill is shared with the answer that follows.
        """
        generator = self.generator()
        if not isinstance(generator, ContinuationScorer):
            return None
        started = time.perf_counter()
        with self.generation_lock:
            logprob = generator.continuation_logprob(messages, NO_ANSWER, REFUSAL_PROBE_TOKENS)
        timings["refusal_check_seconds"] = time.perf_counter() - started
        return float(np.exp(logprob))

    def _generate(
        self,
        messages: list[dict[str, str]],
        timings: dict[str, float],
        waited: float,
        logprobs: list[float] | None = None,
    ) -> Generator_[str, None, str]:
        """Stream the model's answer token by token; returns the whole text and fills the timings."""
        pieces: list[str] = []
        settings = self.settings
        with (
            self.generation_lock,
            self.generator().stream(
                messages, max_tokens=settings.max_answer_tokens, temperature=settings.temperature
            ) as stream,
        ):
            for piece in stream:
                pieces.append(piece)
                yield piece
        stats = stream.stats
        if logprobs is not None:
            logprobs.extend(stats.token_logprobs)
        timings.update(
            first_token_seconds=waited + stats.first_token_seconds,
            generation_seconds=stats.total_seconds,
            prompt_tokens=float(stats.prompt_tokens),
            completion_tokens=float(stats.completion_tokens),
            decode_tokens_per_second=stats.decode_tokens_per_second,
        )
        return "".join(pieces).strip()


def _abstain(
    passages: list[Passage],
    timings: dict[str, float],
    started: float,
    refusal: float | None = None,
    confidence: Confidence | None = None,
) -> Answer:
    """The plain "the documents do not say", with the nearest passages for the reader to check (and the
    confidence of the answer withheld, when one was read)."""
    timings["total_seconds"] = time.perf_counter() - started
    return Answer(
        NO_ANSWER,
        abstained=True,
        timings=timings,
        passages=passages,
        refusal_probability=refusal,
        confidence=confidence.probability if confidence is not None else None,
        signals=confidence.signals if confidence is not None else {},
        hidden_state=confidence.hidden_state if confidence is not None else None,
    )
