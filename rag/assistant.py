"""The Assistant: the one object the CLI, the server and the benchmarks use to ingest and to ask."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator as Generator_
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.catalog import DocumentSummary
from rag.chunking import Chunker
from rag.config import AnswerMode, GroundingMode, Settings
from rag.embeddings import Embedder, SentenceTransformerEmbedder
from rag.errors import (
    DocumentNotFoundError,
    IndexMissingError,
    InvalidInputError,
    ModelUnavailableError,
)
from rag.extractive import extract_answer
from rag.generation import ContinuationScorer, Generator, build_generator
from rag.grounding import (
    NO_ANSWER,
    answer_citations,
    answer_sentences,
    attribute_citations,
    build_messages,
    check_sentences,
    citations_for,
    is_refusal,
    join_sentences,
)
from rag.index import Index
from rag.ingest import Ingestor, ProgressCallback
from rag.policy import GroundingPolicy
from rag.retrieval import CrossEncoderReranker, Reranker, RetrievalFilter, Retriever, evidence_score
from rag.rewriting import standalone_question
from rag.stores.faiss_store import VectorIndexPolicy
from rag.support import (
    CrossEncoderSupportChecker,
    EvidenceSupportChecker,
    JudgeSupportChecker,
    SupportChecker,
)
from rag.types import Answer, Document, IngestReport, Passage

log = logging.getLogger("rag")

REFUSAL_PROBE_TOKENS = 4
"""Tokens of the refusal sentence whose probability is read ("The documents do not"): enough to tell it
from answers that merely start with "The"."""


class Assistant:
    """Wires the components from one Settings; models and the index load lazily, once."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if embedder is not None:
            self.__dict__["embedder"] = embedder
        if generator is not None:
            self.__dict__["generator"] = generator
        self._index: Index | None = None
        self._index_lock = threading.Lock()
        self._generation_lock = threading.Lock()

    # Components
    @cached_property
    def embedder(self) -> Embedder:
        return SentenceTransformerEmbedder(
            self.settings.embedder, allow_downloads=self.settings.allow_downloads
        )

    @cached_property
    def generator(self) -> Generator:
        return build_generator(self.settings)

    @cached_property
    def support_checker(self) -> SupportChecker:
        """The NLI cross-encoder `support_model` names, else the offline checker `support_checker` names."""
        if self.settings.support_model:
            return CrossEncoderSupportChecker(
                self.settings.support_model, allow_downloads=self.settings.allow_downloads
            )
        if self.settings.support_checker == "judge":
            if not isinstance(self.generator, ContinuationScorer):
                raise ModelUnavailableError(
                    f"The generator {self.generator.name} cannot score tokens, so it cannot judge support: "
                    "set support_checker to 'evidence'."
                )
            return JudgeSupportChecker(self.generator)
        return EvidenceSupportChecker(self.embedder)

    @cached_property
    def reranker(self) -> Reranker | None:
        if not self.settings.reranker:
            return None
        return CrossEncoderReranker(self.settings.reranker, allow_downloads=self.settings.allow_downloads)

    def retriever(self) -> Retriever:
        """A retriever over the live index, configured by the settings."""
        return Retriever.from_settings(self.settings, self.embedder, self.index(), self.reranker)

    @property
    def vector_policy(self) -> VectorIndexPolicy:
        s = self.settings
        return VectorIndexPolicy(kind=s.vector_index, threshold=s.vector_index_threshold, nprobe=s.ivf_nprobe)

    @cached_property
    def chunker(self) -> Chunker:
        return Chunker(
            self.embedder, max_tokens=self.settings.chunk_tokens, overlap_tokens=self.settings.chunk_overlap
        )

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    def index(self) -> Index:
        """The live index, reopened when a newer generation has been committed (the one it replaces stays
        open for searches still holding it: see `Index`)."""
        with self._index_lock:
            if self._index is None or self._index.is_stale():
                self._index = Index.open(
                    self.index_dir,
                    embedder=self.embedder.name,
                    dimension=self.embedder.dimension,
                    nprobe=self.settings.ivf_nprobe,
                    embed_titles=self.settings.embed_titles,
                )
            return self._index

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(
            self.settings,
            embedder=self.embedder,
            chunker=self.chunker,
            vector_policy=self.vector_policy,
            live_index=self.index,
        )

    # Ingest
    def ingest(
        self, paths: Iterable[Path | str], *, prune: bool = False, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Index files and folders: skip unchanged files, replace changed ones, optionally prune vanished.

        Files that cannot be read are reported in `failed`; the change is committed atomically at the end.
        """
        return self.ingestor.ingest(paths, prune=prune, progress=progress)

    # Documents
    def documents(self) -> list[DocumentSummary]:
        return self.index().catalog.documents()

    def document(self, doc_id: str) -> Document:
        document = self.index().catalog.document(doc_id)
        if document is None:
            raise DocumentNotFoundError(f"No document {doc_id!r} in the index at {self.index_dir}.")
        return document

    def remove_documents(self, ids: Iterable[str]) -> list[str]:
        """Remove documents (by id or file path) with every file they came from; returns removed files."""
        return self.ingestor.remove_documents(ids)

    # Ask
    def retrieve(
        self, question: str, k: int | None = None, filters: RetrievalFilter | None = None
    ) -> list[Passage]:
        question, k = self._check_question(question, k)
        return self.retriever().retrieve(question, k, filters)

    def _check_question(self, question: str, k: int | None) -> tuple[str, int]:
        question = (question or "").strip()
        if not question:
            raise InvalidInputError('The question is empty: ask something, e.g. rag ask "What is rag?"')
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= 50:
            raise InvalidInputError(f"k must be between 1 and 50, not {k}.")
        return question, k

    def ask(
        self,
        question: str,
        k: int | None = None,
        *,
        history: list[dict[str, str]] | None = None,
        grounding_mode: GroundingMode | None = None,
        answer_mode: AnswerMode | None = None,
    ) -> Answer:
        """Answer from the indexed documents, citing passages; abstain when they do not hold the answer."""
        answer: Answer | None = None
        for event in self.ask_stream(
            question, k, history=history, grounding_mode=grounding_mode, answer_mode=answer_mode
        ):
            if event["type"] == "answer":
                answer = event["answer_object"]
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        k: int | None = None,
        *,
        history: list[dict[str, str]] | None = None,
        grounding_mode: GroundingMode | None = None,
        answer_mode: AnswerMode | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Events: {"type": "token", "text"} while the model writes, then {"type": "answer", ...} carrying
        the per-sentence support checks. `history` (OpenAI-style turns) makes a follow-up standalone first;
        `grounding_mode` and `answer_mode` override the settings for this question."""
        started = time.perf_counter()
        question, k = self._check_question(question, k)
        policy = GroundingPolicy.from_settings(self.settings, grounding_mode)
        extractive = (answer_mode or self.settings.answer_mode) == "extractive"
        timings: dict[str, float] = {}
        if history and not extractive:
            with self._generation_lock:
                question = standalone_question(self.generator, question, history)
            timings["rewrite_seconds"] = time.perf_counter() - started
        passages = self.retriever().retrieve(question, k)
        retrieved = time.perf_counter()
        timings["retrieval_seconds"] = retrieved - started
        if policy.gate_abstains(evidence_score(passages)):
            yield self._answer_event(self._abstain(passages, timings, started))
            return
        refusal: float | None = None
        if extractive:
            text = extract_answer(question, passages, self.embedder)
        else:
            messages = build_messages(question, passages, self.settings.answer_style)
            refusal = self._refusal_probability(messages, timings)
            if policy.refusal_abstains(refusal):
                yield self._answer_event(self._abstain(passages, timings, started, refusal))
                return
            text = yield from self._generate(messages, timings, time.perf_counter() - started)
        if not text or (is_refusal(text) and not citations_for(text, passages)):
            yield self._answer_event(self._abstain(passages, timings, started, refusal))
            return
        sentences = answer_sentences(text, len(passages))
        if policy.checks_support:
            checking = time.perf_counter()
            context = self.claim_context(question, extractive)
            checker, threshold = self.support_checker, policy.support_threshold
            sentences = check_sentences(sentences, passages, checker, threshold, context)
            sentences = attribute_citations(
                sentences, passages, checker, self.settings.attribution_min_support, context
            )
            sentences = check_sentences(sentences, passages, checker, threshold, context)  # attributed ones
            timings["support_seconds"] = time.perf_counter() - checking
        if policy.mode == "strict":
            kept = policy.kept(sentences)
            if kept is None:
                yield self._answer_event(self._abstain(passages, timings, started))
                return
            sentences = kept
            text = join_sentences(sentences)
        timings["total_seconds"] = time.perf_counter() - started
        citations = answer_citations(text, sentences, passages)
        answer = Answer(
            text,
            abstained=False,
            citations=citations,
            timings=timings,
            passages=passages,
            sentences=sentences,
            refusal_probability=refusal,
        )
        yield self._answer_event(answer)

    def claim_context(self, question: str, extractive: bool) -> str | None:
        """The question short answers are checked with (see `claim_of`); None for sentence answers."""
        return question if self.settings.answer_style == "short" and not extractive else None

    def _refusal_probability(self, messages: list[dict[str, str]], timings: dict[str, float]) -> float | None:
        """The model's probability of replying with the refusal, when its backend can score a continuation.

        It reads the model's belief that the sources lack the answer even when greedy decoding would go on
        to answer anyway; the prompt's prefill is shared with the answer that follows.
        """
        if not isinstance(self.generator, ContinuationScorer):
            return None
        started = time.perf_counter()
        with self._generation_lock:
            logprob = self.generator.continuation_logprob(messages, NO_ANSWER, REFUSAL_PROBE_TOKENS)
        timings["refusal_check_seconds"] = time.perf_counter() - started
        return float(np.exp(logprob))

    def _generate(
        self, messages: list[dict[str, str]], timings: dict[str, float], waited: float
    ) -> Generator_[dict[str, Any], None, str]:
        """Stream the model's answer as token events; returns the whole text and fills the timings."""
        pieces: list[str] = []
        with self._generation_lock:
            stream = self.generator.stream(
                messages, max_tokens=self.settings.max_answer_tokens, temperature=self.settings.temperature
            )
            for piece in stream:
                pieces.append(piece)
                yield {"type": "token", "text": piece}
        stats = stream.stats
        timings.update(
            first_token_seconds=waited + stats.first_token_seconds,
            generation_seconds=stats.total_seconds,
            prompt_tokens=float(stats.prompt_tokens),
            completion_tokens=float(stats.completion_tokens),
            decode_tokens_per_second=stats.decode_tokens_per_second,
        )
        return "".join(pieces).strip()

    @staticmethod
    def _abstain(
        passages: list[Passage], timings: dict[str, float], started: float, refusal: float | None = None
    ) -> Answer:
        """The plain "the documents do not say", with the nearest passages for the reader to check."""
        timings["total_seconds"] = time.perf_counter() - started
        return Answer(
            NO_ANSWER, abstained=True, timings=timings, passages=passages, refusal_probability=refusal
        )

    @staticmethod
    def _answer_event(answer: Answer) -> dict[str, Any]:
        return {"type": "answer", "answer": answer.to_dict(), "answer_object": answer}

    def health(self) -> dict[str, Any]:
        """Model and index status, for `GET /api/health`."""
        status: dict[str, Any] = {
            "status": "ok",
            "embedder": self.settings.embedder,
            "generator": self.settings.generator,
            "generator_backend": self.settings.generator_backend,
            "generator_loaded": "generator" in self.__dict__,
            "index_dir": str(self.index_dir),
        }
        try:
            manifest = self.index().manifest
            status["index"] = {
                "documents": manifest.documents,
                "chunks": manifest.chunks,
                "generation": manifest.generation,
                "vector_index": manifest.vector_index,
            }
        except IndexMissingError as exc:
            status["status"] = "no_index"
            status["index"] = None
            status["detail"] = str(exc)
        return status
