"""Admission to the language model: one answer runs at a time, a bounded number wait, the rest get 503.

Tickets keep their order of admission, so a waiting answer knows how many are ahead of it (`ahead_of`)
and a stream can wait for its turn without holding a worker thread (`turns`).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator

from rag.errors import RagError

TURN_POLL_SECONDS = 0.2
"""How often a waiting stream looks at its place in the queue."""


class ServerBusyError(RagError):
    """Too many answers are waiting for the model; retry after `retry_after` seconds."""

    status_code = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AnswerTicket:
    """A place in the queue; `release()` (idempotent) frees it."""

    def __init__(self, queue: AnswerQueue) -> None:
        self._queue = queue
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._queue._release(self)

    def __enter__(self) -> AnswerTicket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class AnswerQueue:
    """Counts admitted answer requests: the Answerer's generation lock runs them one at a time, and this
    bound keeps the waiting ones (each holding a worker thread) few, so search stays responsive."""

    def __init__(self, max_waiting: int, typical_answer_seconds: float = 10.0) -> None:
        self.capacity = max_waiting + 1
        self.typical_answer_seconds = typical_answer_seconds
        self._tickets: list[AnswerTicket] = []
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return len(self._tickets)

    def admit(self) -> AnswerTicket:
        """A ticket, or ServerBusyError with a Retry-After estimate when the queue is full."""
        with self._lock:
            if len(self._tickets) >= self.capacity:
                retry = max(1, math.ceil(self.typical_answer_seconds))
                raise ServerBusyError(
                    f"The model is busy: {len(self._tickets) - 1} answers are already waiting "
                    f"(setting max_queued_answers). Retry in about {retry} s.",
                    retry_after=retry,
                )
            ticket = AnswerTicket(self)
            self._tickets.append(ticket)
        return ticket

    def ahead_of(self, ticket: AnswerTicket) -> int:
        """How many answers admitted before `ticket` are still running or waiting (0: its turn)."""
        with self._lock:
            return self._tickets.index(ticket) if ticket in self._tickets else 0

    async def turns(self, ticket: AnswerTicket) -> AsyncIterator[int]:
        """Yield the number of answers ahead of `ticket` whenever it changes; end when it is its turn."""
        last = -1
        while (ahead := self.ahead_of(ticket)) > 0:
            if ahead != last:
                yield ahead
                last = ahead
            await asyncio.sleep(TURN_POLL_SECONDS)

    def _release(self, ticket: AnswerTicket) -> None:
        with self._lock:
            self._tickets.remove(ticket)

    def status(self) -> dict[str, int]:
        return {"admitted": self.admitted, "capacity": self.capacity}
