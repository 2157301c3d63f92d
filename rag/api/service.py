"""What the routes share: the Assistant, the answer queue, the ingest jobs, and the streaming bridge."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool

from rag.answering import AnswerStatus, AnswerStream
from rag.api.jobs import IngestJobs, JobStore
from rag.api.queue import AnswerQueue, AnswerTicket
from rag.api.schemas import Turn, answer_payload
from rag.assistant import Assistant
from rag.errors import RagError

log = logging.getLogger("rag.api")


@dataclass
class ApiService:
    assistant: Assistant
    queue: AnswerQueue
    jobs: IngestJobs

    @classmethod
    def build(cls, assistant: Assistant) -> ApiService:
        settings = assistant.settings
        jobs = IngestJobs(
            assistant,
            JobStore(settings.upload_dir / ".jobs.sqlite"),
            resume_attempts=settings.upload_resume_attempts,
        )
        return cls(assistant, AnswerQueue(settings.max_queued_answers), jobs)

    @staticmethod
    def _ask_kwargs(k: int | None, history: list[Turn]) -> dict[str, Any]:
        """Keyword arguments of `Assistant.ask`/`ask_stream`; the history makes a follow-up standalone."""
        return {"k": k, "history": [turn.model_dump() for turn in history] or None}

    async def answer(self, question: str, k: int | None, history: list[Turn]) -> dict[str, Any]:
        """The whole answer, after waiting for the model (ServerBusyError when the queue is full)."""
        with self.queue.admit():
            answer = await run_in_threadpool(self.assistant.ask, question, **self._ask_kwargs(k, history))
        return answer_payload(answer)

    def start_stream(
        self, question: str, k: int | None, history: list[Turn], *, statuses: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Admit now (so a full queue is a 503 before any byte is sent), then stream the answer.

        Yields {"type": "token", "text"} and one {"type": "answer", "answer": payload}; an error after
        the stream began arrives as {"type": "error", "error": {...}}. With `statuses`, the answer first
        waits for its turn in the queue and {"type": "status", "step", ...} events tell each step as it
        begins: `queued` (with `ahead`, the answers before it), then those of `AnswerStatus`.
        """
        ticket = self.queue.admit()
        stream = self.assistant.ask_stream(question, **self._ask_kwargs(k, history))
        return _bridge(stream, ticket, self.queue if statuses else None)


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
