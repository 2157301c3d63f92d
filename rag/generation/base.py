"""The seam between answering and a language model: the `Generator` protocol and its streamed output."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class GenerationStats:
    """Token counts and timings of one generation, measured from the moment the caller starts reading."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_seconds: float = 0.0
    total_seconds: float = 0.0
    token_logprobs: list[float] = field(default_factory=list)
    """Log-probability of each token the model chose, where the backend reads them (llama.cpp; greedy
    decoding: the top token's), for the confidence signals (`rag/signals/`); empty elsewhere."""

    @property
    def decode_tokens_per_second(self) -> float:
        """Writing speed after the first token (which carries the prompt's prefill); 0 if unknown."""
        decode_seconds = self.total_seconds - self.first_token_seconds
        if self.completion_tokens < 2 or decode_seconds <= 0:
            return 0.0
        return (self.completion_tokens - 1) / decode_seconds


class GenerationStream:
    """The text pieces of one answer as the model writes them, with `stats` filled in as they arrive.

    Timing starts at the first `next()`, so a stream built but not yet read costs nothing and measures
    nothing. The backend fills the token counts in `stats` (it knows its tokenizer); `stats` is complete
    once iteration ends. `close()` stops the model early and releases it for the next caller.
    """

    def __init__(self, pieces: Iterator[str], stats: GenerationStats | None = None) -> None:
        self.stats = stats if stats is not None else GenerationStats()
        self.done = False
        self._pieces = pieces
        self._parts: list[str] = []
        self._started: float | None = None

    def __iter__(self) -> GenerationStream:
        return self

    def __next__(self) -> str:
        if self.done:
            raise StopIteration
        if self._started is None:
            self._started = time.perf_counter()
        try:
            piece = next(self._pieces)
        except BaseException:
            self._finish()
            raise
        if piece and not self._parts:
            self.stats.first_token_seconds = time.perf_counter() - self._started
        if piece:
            self._parts.append(piece)
        self.stats.total_seconds = time.perf_counter() - self._started
        return piece

    @property
    def text(self) -> str:
        """Everything written so far."""
        return "".join(self._parts)

    def close(self) -> None:
        """Stop generating (when the reader wants no more) and finish the stats."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()
        self._finish()

    def __enter__(self) -> GenerationStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self._started is not None:
            self.stats.total_seconds = time.perf_counter() - self._started


@runtime_checkable
class Generator(Protocol):
    """A chat language model that streams its answer; the chat template is the model's own."""

    name: str

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        """Answer OpenAI-style chat `messages` (`{"role": ..., "content": ...}`) in at most `max_tokens`."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's tokenizer (no special tokens), for budgeting prompts."""
        ...


@runtime_checkable
class ContinuationScorer(Protocol):
    """A generator that can say how likely it is to begin its reply with a given text (its own belief,
    read from its token probabilities rather than from what greedy decoding happens to pick)."""

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        """Natural log-probability that the reply to `messages` starts with the first `max_tokens` tokens
        of `continuation`."""
        ...


@runtime_checkable
class HiddenStateReader(Protocol):
    """A generator that exposes its final hidden state at the end of a prompt (for a linear probe of
    whether the passages answer the question)."""

    def prompt_hidden_state(self, messages: list[dict[str, str]]) -> list[float]:
        """The hidden state after the last token of `messages` rendered as the model's prompt."""
        ...
