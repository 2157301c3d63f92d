"""The Assistant: the one object the CLI, the server and the benchmarks use to ingest and to ask."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from typing_extensions import Unpack

from rag.answering import Answerer, AnswerStream, AskOptions
from rag.catalog import DocumentSummary
from rag.chunking import Chunker
from rag.config import Settings
from rag.embeddings import Embedder, load_embedder
from rag.errors import (
    DocumentNotFoundError,
    ModelUnavailableError,
)
from rag.generation import ContinuationScorer, Generator, build_generator
from rag.grounding import NO_ANSWER, build_messages
from rag.index import Index
from rag.ingest import Ingestor, ProgressCallback
from rag.retrieval import CrossEncoderReranker, Reranker, RetrievalFilter, RetrievalMode, Retriever
from rag.stores import VectorIndexPolicy
from rag.support import (
    CrossEncoderSupportChecker,
    EvidenceSupportChecker,
    JudgeSupportChecker,
    SupportChecker,
)
from rag.types import Answer, Document, IngestReport, Passage


class Assistant:
    """Wires the components from one Settings; models and the index load lazily, once.

    A component passed in (an embedder, generator or support checker) is used instead of the one the
    settings name. An assistant given `models` (another collection's) uses that one's models, so a
    process loads each model once whatever the number of collections it serves.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        support_checker: SupportChecker | None = None,
        models: Assistant | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._models = models
        given = {"embedder": embedder, "generator": generator, "support_checker": support_checker}
        self.__dict__.update({name: component for name, component in given.items() if component is not None})
        self._index: Index | None = None
        self._index_lock = threading.Lock()
        # Built here, before any thread asks, so every question shares the Answerer's one generation lock.
        self.answerer = Answerer(
            self.settings,
            embedder=lambda: self.embedder,
            retriever=self.retriever,
            generator=lambda: self.generator,
            support_checker=lambda: self.support_checker,
        )
        if models is not None:  # one model: one generation at a time, whatever the collection asking
            self.answerer.generation_lock = models.answerer.generation_lock

    # Components
    @cached_property
    def embedder(self) -> Embedder:
        if self._models is not None:
            return self._models.embedder
        return load_embedder(
            self.settings.embedder,
            backend=self.settings.embedder_backend,
            cache_dir=self.settings.model_cache_dir,
            allow_downloads=self.settings.allow_downloads,
            query_backend=self.settings.query_embedder_backend,
            precision=self.settings.embedder_precision,
        )

    @cached_property
    def generator(self) -> Generator:
        if self._models is not None:
            return self._models.generator
        return build_generator(self.settings)

    @property
    def generator_loaded(self) -> bool:
        """Whether the language model is loaded (it loads on the first question that needs it)."""
        if self._models is not None:
            return self._models.generator_loaded
        return "generator" in self.__dict__

    @cached_property
    def support_checker(self) -> SupportChecker:
        """The NLI cross-encoder `support_model` names, else the offline checker `support_checker` names."""
        if self._models is not None:
            return self._models.support_checker
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
        if self._models is not None:
            return self._models.reranker
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
        self,
        question: str,
        k: int | None = None,
        filters: RetrievalFilter | None = None,
        mode: RetrievalMode | None = None,
    ) -> list[Passage]:
        """The passages most relevant to `question`, without the language model (`mode`: this search's)."""
        return self.answerer.retrieve(question, k, filters, mode)

    def ask(self, question: str, k: int | None = None, **options: Unpack[AskOptions]) -> Answer:
        """Answer from the indexed documents, citing passages; abstain when they do not hold the answer."""
        return self.ask_stream(question, k, **options).result()

    def ask_stream(self, question: str, k: int | None = None, **options: Unpack[AskOptions]) -> AnswerStream:
        """The answer as it is written: iterate for tokens, then read `.answer` (with its support checks).

        `history` (OpenAI-style turns) makes a follow-up standalone first; `grounding_mode` and
        `answer_mode` override the settings for this question.
        """
        return self.answerer.stream(question, k, **options)

    def warm_up(self) -> None:
        """Run the models once, so the first question pays no one-time cost: the question runtime's load, the
        first embedding batches' kernel set-up and, on llama.cpp, the prompt's instructions (evaluated once
        and kept in its cache for every later question, whatever the passages)."""
        self.embedder.embed_query("Which port does the server use?")
        self.embedder.embed(["The server listens on port 8000.", "Set another port with the --port option."])
        generator = self.generator
        if self.settings.generator_backend == "llama_cpp" and isinstance(generator, ContinuationScorer):
            messages = build_messages("Which port does the server use?", [], self.settings.answer_style)
            generator.continuation_logprob(messages, NO_ANSWER, 1)

    def claim_context(self, question: str, extractive: bool) -> str | None:
        """The question short answers are checked with (see `claim_of`); None for sentence answers."""
        return self.answerer.claim_context(question, extractive)
