"""Admission to the language model: one answer runs at a time, a bounded number wait, the rest get 503."""

from __future__ import annotations

import math
import threading

from rag.errors import RagError


class ServerBusyError(RagError):
    """Too many answers are waiting for the model; retry after `retry_after` seconds."""

    status_code = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AnswerTicket:
    """A place in the queue; `release()` (idempotent) frees it and records how long the answer took."""

    def __init__(self, queue: AnswerQueue) -> None:
        self._queue = queue
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._queue._release()

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
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return self._admitted

    def admit(self) -> AnswerTicket:
        """A ticket, or ServerBusyError with a Retry-After estimate when the queue is full."""
        with self._lock:
            if self._admitted >= self.capacity:
                retry = max(1, math.ceil(self.typical_answer_seconds))
                raise ServerBusyError(
                    f"The model is busy: {self._admitted - 1} answers are already waiting "
                    f"(setting max_queued_answers). Retry in about {retry} s.",
                    retry_after=retry,
                )
            self._admitted += 1
        return AnswerTicket(self)

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def status(self) -> dict[str, int]:
        return {"admitted": self._admitted, "capacity": self.capacity}
