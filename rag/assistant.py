"""The Assistant: the one object the CLI, the server and the benchmarks use to ingest and to ask."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Generator as Generator_
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.catalog import DocumentSummary, FileRecord
from rag.chunking import Chunker
from rag.config import AnswerMode, GroundingMode, Settings
from rag.embeddings import Embedder, SentenceTransformerEmbedder
from rag.errors import (
    DocumentNotFoundError,
    IndexMissingError,
    InvalidInputError,
    ModelUnavailableError,
    ParseError,
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
from rag.index import FORMAT_VERSION, Index, IndexChange, Manifest, WriteLock, read_current
from rag.lexical import lexical_text
from rag.parsers import SUPPORTED_SUFFIXES, parse_file
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
from rag.types import Answer, Chunk, Document, FileFailure, IngestReport, Passage

log = logging.getLogger("rag")

ProgressCallback = Callable[[str, int], None]
"""Called with ("files", n) when n more files are handled, ("chunks", n) when n chunks are queued
for embedding and ("embedded", n) when n more chunks are embedded."""

_FLUSH_CHUNKS = 1024

REFUSAL_PROBE_TOKENS = 4
"""Tokens of the refusal sentence whose probability is read ("The documents do not"): enough to tell it
from answers that merely start with "The"."""


def display_path(path: Path) -> str:
    """How a file is named in citations: relative to the working folder when inside it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def discover_files(paths: Iterable[Path]) -> tuple[list[Path], list[FileFailure]]:
    """Files to ingest: named files as given, folders searched for supported, non-hidden files."""
    found: list[Path] = []
    failures: list[FileFailure] = []
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                if candidate.is_file() and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.append(candidate)
        elif path.is_file():
            found.append(path)
        else:
            failures.append(FileFailure(str(path), "no such file or folder"))
    return found, failures


@dataclass
class _PendingFile:
    record: FileRecord
    display: str
    documents: list[Document]
    chunks: list[Chunk] = field(default_factory=list)
    replaced: bool = False


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
        """The live index, reopened when another process has committed a newer generation."""
        with self._index_lock:
            if self._index is None or self._index.is_stale():
                if self._index is not None:
                    self._index.close()
                self._index = Index.open(
                    self.index_dir,
                    embedder=self.embedder.name,
                    dimension=self.embedder.dimension,
                    nprobe=self.settings.ivf_nprobe,
                    embed_titles=self.settings.embed_titles,
                )
            return self._index

    def _new_manifest(self) -> Manifest:
        return Manifest(
            format_version=FORMAT_VERSION,
            embedder=self.embedder.name,
            dimension=self.embedder.dimension,
            chunk_tokens=self.settings.chunk_tokens,
            chunk_overlap=self.settings.chunk_overlap,
            embed_titles=self.settings.embed_titles,
        )

    # Ingest
    def ingest(
        self, paths: Iterable[Path | str], *, prune: bool = False, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Index files and folders: skip unchanged files, replace changed ones, optionally prune vanished.

        Files that cannot be read are reported in `failed`; all others are indexed. The change is
        committed atomically at the end: a crash leaves the previous index.
        """
        started = time.perf_counter()
        notify = progress or (lambda _kind, _n: None)
        roots = [Path(p) for p in paths]
        files, failures = discover_files(roots)
        report = IngestReport(failed=failures)
        with WriteLock(self.index_dir):
            base = None
            if read_current(self.index_dir) is not None:
                base = self.index()
                change = base.begin(self.vector_policy)
            else:
                change = IndexChange(self.index_dir, None, self._new_manifest(), self.vector_policy)
            try:
                self._ingest_into(change, files, report, notify)
                if prune:
                    self._prune(change, report, roots)
                if base is not None and not (report.added or report.updated or report.removed):
                    change.abort()
                else:
                    change.commit()
            except BaseException:
                change.abort()
                raise
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_into(
        self, change: IndexChange, files: list[Path], report: IngestReport, notify: ProgressCallback
    ) -> None:
        max_bytes = int(self.settings.max_file_mb * 2**20)
        pending: list[_PendingFile] = []
        queued = 0
        claimed: dict[str, str] = {}
        for path in files:
            pending_file = self._read_file(change, path, max_bytes, report, claimed)
            notify("files", 1)
            if pending_file is None:
                continue
            pending_file.chunks = [c for d in pending_file.documents for c in self.chunker.chunk(d)]
            pending.append(pending_file)
            queued += len(pending_file.chunks)
            notify("chunks", len(pending_file.chunks))
            if queued >= _FLUSH_CHUNKS:
                self._apply(change, pending, report, notify)
                pending, queued = [], 0
        self._apply(change, pending, report, notify)

    def _read_file(
        self, change: IndexChange, path: Path, max_bytes: int, report: IngestReport, claimed: dict[str, str]
    ) -> _PendingFile | None:
        """Parse one file when it is new or changed; record a failure or an unchanged file otherwise."""
        display = display_path(path)
        key = str(path.resolve())
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise ParseError(
                    display,
                    f"file is {size / 2**20:.1f} MiB, larger than the {max_bytes / 2**20:.0f} MiB limit "
                    "(setting max_file_mb)",
                )
            data = path.read_bytes()
        except ParseError as exc:
            report.failed.append(FileFailure(display, exc.reason))
            return None
        except OSError as exc:
            report.failed.append(FileFailure(display, f"cannot read: {exc.strerror or exc}"))
            return None
        content_hash = hashlib.sha256(data).hexdigest()
        previous = change.catalog.file(key)
        if previous is not None and previous.content_hash == content_hash:
            report.unchanged.append(display)
            return None
        try:
            documents = parse_file(path, source=display, max_bytes=max_bytes)
        except ParseError as exc:
            report.failed.append(FileFailure(display, exc.reason))
            return None
        for document in documents:
            owner = claimed.get(document.id) or change.catalog.document_owner(document.id)
            if owner is not None and owner != key:
                report.failed.append(
                    FileFailure(display, f"document id {document.id!r} is already indexed from {owner}")
                )
                return None
        for document in documents:
            claimed[document.id] = key
        record = FileRecord(path=key, content_hash=content_hash, size=size, ingested_at=time.time())
        return _PendingFile(record, display, documents, replaced=previous is not None)

    def _apply(
        self, change: IndexChange, pending: list[_PendingFile], report: IngestReport, notify: ProgressCallback
    ) -> None:
        """Embed the queued chunks and write their files into the change."""
        titles = {d.id: d.title for p in pending for d in p.documents}
        texts = [
            lexical_text(titles[c.doc_id], c.text) if self.settings.embed_titles else c.text
            for p in pending
            for c in p.chunks
        ]
        vectors = self.embedder.embed(
            texts, batch_size=self.settings.embed_batch_size, on_batch=lambda n: notify("embedded", n)
        )
        offset = 0
        for item in pending:
            removed = change.catalog.remove_file(item.record.path)
            change.vectors.remove(np.asarray(removed, dtype=np.int64))
            change.catalog.put_file(item.record)
            for document in item.documents:
                change.catalog.add_document(document, item.record.path)
            ids = change.catalog.add_chunks(item.chunks)
            change.vectors.add(np.asarray(ids, dtype=np.int64), vectors[offset : offset + len(ids)])
            offset += len(ids)
            report.chunks_added += len(ids)
            (report.updated if item.replaced else report.added).append(item.display)

    def _prune(self, change: IndexChange, report: IngestReport, roots: list[Path]) -> None:
        """Drop indexed files under the ingested paths that no longer exist."""
        prefixes = [str(root.resolve()) for root in roots]
        for record in change.catalog.files():
            under = any(
                record.path == p or record.path.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes
            )
            if under and not os.path.exists(record.path):
                removed = change.catalog.remove_file(record.path)
                change.vectors.remove(np.asarray(removed, dtype=np.int64))
                report.removed.append(display_path(Path(record.path)))

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
        with WriteLock(self.index_dir):
            base = self.index()
            change = base.begin(self.vector_policy)
            removed: list[str] = []
            try:
                for doc_id in ids:
                    owner = change.catalog.document_owner(doc_id) or (
                        str(Path(doc_id).resolve())
                        if change.catalog.file(str(Path(doc_id).resolve()))
                        else None
                    )
                    if owner is None:
                        raise DocumentNotFoundError(
                            f"No document {doc_id!r} in the index at {self.index_dir}."
                        )
                    chunk_ids = change.catalog.remove_file(owner)
                    change.vectors.remove(np.asarray(chunk_ids, dtype=np.int64))
                    removed.append(display_path(Path(owner)))
                change.commit()
            except BaseException:
                change.abort()
                raise
        return removed

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
