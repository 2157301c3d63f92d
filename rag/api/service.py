"""What the routes share: the collections' assistants, the answer queue, the ingest jobs, the streaming
bridge."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi.concurrency import run_in_threadpool

from rag.answering import AnswerStatus, AnswerStream, AskOptions
from rag.api.jobs import IngestJobs, JobStore
from rag.api.queue import AnswerQueue, AnswerTicket
from rag.api.schemas import QuestionScope, Turn, answer_payload
from rag.assistant import Assistant
from rag.collections import Collections
from rag.config import GroundingMode
from rag.errors import RagError
from rag.retrieval import RetrievalFilter, RetrievalMode
from rag.types import Passage

JOBS_FILE = ".jobs.sqlite"
"""The job store of a collection's uploads, in its upload folder."""

log = logging.getLogger("rag.api")


@dataclass(frozen=True)
class QuestionOptions:
    """Where and how one question is answered: its collection (None: the default), the documents it is
    limited to (ids or sources), and overrides of the retrieval and grounding settings."""

    collection: str | None = None
    documents: tuple[str, ...] | None = None
    retrieval_mode: RetrievalMode | None = None
    grounding_mode: GroundingMode | None = None
    instructions: str | None = None

    @property
    def filters(self) -> RetrievalFilter | None:
        return RetrievalFilter(documents=self.documents) if self.documents is not None else None

    def ask_options(self) -> AskOptions:
        return {
            "retrieval_mode": self.retrieval_mode,
            "grounding_mode": self.grounding_mode,
            "filters": self.filters,
            "instructions": self.instructions,
        }


@dataclass
class ApiService:
    collections: Collections
    queue: AnswerQueue
    _jobs: dict[str, IngestJobs] = field(default_factory=dict)

    @classmethod
    def build(cls, assistant: Assistant) -> ApiService:
        return cls(Collections(assistant), AnswerQueue(assistant.settings.max_queued_answers))

    @property
    def assistant(self) -> Assistant:
        """The default collection's assistant (its models are every collection's)."""
        return self.collections.default

    @property
    def jobs(self) -> IngestJobs:
        """The default collection's ingest jobs."""
        return self.jobs_for(None)

    def jobs_for(self, collection: str | None, *, create: bool = False) -> IngestJobs:
        """The ingest jobs of a collection, each kept in its own upload folder (`create`: for an upload,
        which may start a collection)."""
        assistant = self.collections.get(collection, create=create)
        name = collection or self.collections.default_name
        if name not in self._jobs:
            settings = assistant.settings
            self._jobs[name] = IngestJobs(
                assistant,
                JobStore(settings.upload_dir / JOBS_FILE),
                resume_attempts=settings.upload_resume_attempts,
            )
        return self._jobs[name]

    def resume(self) -> None:
        """Resume the unfinished ingest jobs of every collection (the default's, and those with jobs)."""
        for name in self.collections.names():
            settings = self.collections.get(name).settings
            if name == self.collections.default_name or (settings.upload_dir / JOBS_FILE).is_file():
                self.jobs_for(name).resume()

    def shutdown(self) -> None:
        for jobs in self._jobs.values():
            jobs.shutdown()

    async def answer(
        self, question: str, k: int | None, history: list[Turn], options: QuestionOptions | None = None
    ) -> dict[str, Any]:
        """The whole answer, after waiting for the model (ServerBusyError when the queue is full)."""
        options = options or QuestionOptions()
        assistant = self.collections.get(options.collection)
        with self.queue.admit():
            answer = await run_in_threadpool(
                assistant.ask, question, k, **_history(history), **options.ask_options()
            )
        return answer_payload(answer)

    def start_stream(
        self,
        question: str,
        k: int | None,
        history: list[Turn],
        options: QuestionOptions | None = None,
        *,
        statuses: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        """Admit now (so a full queue is a 503 before any byte is sent), then stream the answer.

        Yields {"type": "token", "text"} and one {"type": "answer", "answer": payload}; an error after
        the stream began arrives as {"type": "error", "error": {...}}. With `statuses`, the answer first
        waits for its turn in the queue and {"type": "status", "step", ...} events tell each step as it
        begins: `queued` (with `ahead`, the answers before it), then those of `AnswerStatus`.
        """
        options = options or QuestionOptions()
        assistant = self.collections.get(options.collection)
        if options.filters is not None:  # an unknown document is a 400 now, not an error mid-stream
            options.filters.allowed_chunk_ids(assistant.index())
        ticket = self.queue.admit()
        stream = assistant.ask_stream(question, k, **_history(history), **options.ask_options())
        return _bridge(stream, ticket, self.queue if statuses else None)

    async def search(
        self, question: str, k: int | None, options: QuestionOptions | None = None
    ) -> list[Passage]:
        """The passages most relevant to `question`, without the language model."""
        options = options or QuestionOptions()
        assistant = self.collections.get(options.collection)
        return await run_in_threadpool(
            assistant.retrieve, question, k, options.filters, options.retrieval_mode
        )


def question_options(body: QuestionScope) -> QuestionOptions:
    """The per-question options of a request (`/api/answer`, `/api/search` and their streams)."""
    return QuestionOptions(
        collection=body.collection,
        documents=tuple(body.documents) if body.documents is not None else None,
        retrieval_mode=body.retrieval_mode,
        grounding_mode=getattr(body, "grounding_mode", None),
    )


def _history(history: list[Turn]) -> AskOptions:
    """The earlier turns as `Assistant.ask` takes them; they make a follow-up standalone."""
    return {"history": [turn.model_dump() for turn in history] or None}


async def _bridge(
    stream: AnswerStream, ticket: AnswerTicket, queue: AnswerQueue | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Read an answer stream from worker threads; cancelling it (client gone, Stop) frees the model.

    With `queue`, wait for the ticket's turn first and pass on the steps as status events.
    """
    try:
        if queue is not None:
            async for ahead in queue.turns(ticket):
                yield {"type": "status", "step": "queued", "ahead": ahead}
        while True:
            try:
                token = await run_in_threadpool(stream.next_item)
            except RagError as exc:
                yield {"type": "error", "error": {"type": type(exc).__name__, "message": str(exc)}}
                return
            except Exception:  # noqa: BLE001  (the stream has started: report it in-band, never crash)
                log.exception("answer stream failed")
                yield {"type": "error", "error": {"type": "InternalError", "message": "The answer failed."}}
                return
            if token is None:
                yield {"type": "answer", "answer": answer_payload(stream.answer)}
                return
            if isinstance(token, AnswerStatus):
                if queue is not None:
                    yield {"type": "status", **asdict(token)}
                continue
            yield {"type": "token", "text": token}
    finally:
        stream.cancel()
        ticket.release()
