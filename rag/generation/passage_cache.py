"""Passage KV cache for the llama.cpp backend: each passage's keys and values computed once, then placed into
any later prompt that holds it by shifting their positions, so a question costs the prefill of its own words.

A passage's state is computed after the prompt's static prefix (instructions and demonstration, the same for
every question of a style) at the position right after it, and stored in a RAM LRU with a byte budget. At
question time the static prefix stays in llama.cpp's cache as before; each passage's state is restored into a
scratch sequence, shifted to where the passage sits in this prompt (`llama_memory_seq_add`, which rotates the
keys) and copied into the prompt's sequence; only what lies between passages (their numbers) and the question
after them are evaluated normally.
The placed passages did not attend to one another (TurboRAG's and APE's approximation): the question and the
answer still attend to all of them. With `recompute_tokens`, the last tokens of each passage are evaluated
again in place, after the passages before it (CacheBlend's selective recomputation, at the boundaries).
Which spans are passages is the prompt layout's business (a `spans` function on the rendered prompt); this
module only maps them to tokens and moves states.
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import llama_cpp
import numpy as np
from llama_cpp import Llama

SCRATCH_SEQ = 1
"""The llama.cpp sequence a passage state is restored into and shifted in before joining the prompt's (0)."""

ENTRY_OVERHEAD_BYTES = 200
"""What one LRU entry costs beside its key and state objects (the ordered dict's node and slot, the size)."""

Spans = Callable[[str], list[tuple[int, int]]]
"""Character spans [start, end) of the passages in a rendered prompt, in order."""


class StateLRU:
    """Passage states by key, least recently used evicted first, within a byte budget that counts every
    stored object (key, state buffer) plus each entry's bookkeeping."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.bytes_used = 0
        self._entries: OrderedDict[bytes, tuple[bytearray, int]] = OrderedDict()

    @staticmethod
    def entry_bytes(key: bytes, state: bytearray) -> int:
        return sys.getsizeof(key) + sys.getsizeof(state) + ENTRY_OVERHEAD_BYTES

    def get(self, key: bytes) -> bytearray | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: bytes, state: bytearray) -> bool:
        """Store `state`, evicting the oldest entries to make room; False when it alone exceeds the budget."""
        size = self.entry_bytes(key, state)
        if size > self.budget_bytes:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes_used -= old[1]
        while self._entries and self.bytes_used + size > self.budget_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes_used -= evicted
        self._entries[key] = (state, size)
        self.bytes_used += size
        return True


def state_key(model: str, prefix: Sequence[int], passage: Sequence[int]) -> bytes:
    """The key of a passage's state: the model file, the exact tokens before it (the static prefix it was
    computed after) and its exact tokens; a digest, so the key's size does not grow with the passage."""
    digest = hashlib.sha256(model.encode("utf-8"))
    for tokens in (prefix, passage):
        array = np.asarray(tokens, dtype=np.int32)
        digest.update(len(array).to_bytes(4, "little"))
        digest.update(array.tobytes())
    return digest.digest()


def token_spans(token_bytes: Sequence[int], spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token ranges [a, b) covering exactly each byte span [start, end), given every token's length in bytes;
    a span whose edges fall inside a token (it shares a token with its neighbour) is left out, so it is
    evaluated normally."""
    ends = np.cumsum(token_bytes)
    starts = ends - np.asarray(token_bytes)
    ranges = []
    for start, end in spans:
        a = int(np.searchsorted(starts, start))
        b = int(np.searchsorted(ends, end)) + 1
        if a < len(starts) and b <= len(ends) and starts[a] == start and ends[b - 1] == end and a < b:
            ranges.append((a, b))
    return ranges


@dataclass
class PlacementStats:
    """What `place` did (the last call, or all of them), for tests and benchmarks."""

    placed: int = 0
    computed: int = 0
    passage_tokens: int = 0

    def add(self, other: PlacementStats) -> None:
        self.placed += other.placed
        self.computed += other.computed
        self.passage_tokens += other.passage_tokens


class PassageCache:
    """Places the passages of a prompt into a llama.cpp context from stored states (computing the missing
    ones once). The context needs a second sequence in a unified KV cache (`prepare_context`)."""

    def __init__(self, model: str, budget_bytes: int, spans: Spans, recompute_tokens: int = 0) -> None:
        self.model = model
        self.spans = spans
        self.recompute_tokens = recompute_tokens
        """The last tokens of each placed passage evaluated again in place, after the passages before."""
        self.states = StateLRU(budget_bytes)
        self.last = PlacementStats()
        self.totals = PlacementStats()

    def passage_ranges(self, llama: Llama, text: str, prompt: Sequence[int]) -> list[tuple[int, int]]:
        """The token ranges of the passages of `prompt` (the tokens of `text`); none where the tokens do not
        spell the text back byte for byte."""
        lengths = [len(llama.detokenize([t], special=True)) for t in prompt]
        if sum(lengths) != len(text.encode("utf-8")):
            return []
        spans = [(len(text[:s].encode("utf-8")), len(text[:e].encode("utf-8"))) for s, e in self.spans(text)]
        return token_spans(lengths, spans)

    def place(self, llama: Llama, text: str, prompt: Sequence[int]) -> None:
        """Leave `llama` holding a prefix of `prompt[:-1]`: the part it already held, then every passage up
        to the last one placed from its state; `n_tokens` and `input_ids` say so, and the caller evaluates
        the rest (the question) as usual. Call with `n_tokens` already cut to the prefix `llama` shares
        with `prompt`."""
        self.last = PlacementStats()
        try:
            self._place(llama, text, prompt)
        finally:
            self.totals.add(self.last)

    def _place(self, llama: Llama, text: str, prompt: Sequence[int]) -> None:
        ranges = [r for r in self.passage_ranges(llama, text, prompt) if r[1] < len(prompt)]
        if not ranges:
            return
        static = ranges[0][0]
        kept = llama.n_tokens
        for a, b in ranges:
            if a < kept < b:
                kept = a
        todo = [(a, b) for a, b in ranges if b > kept]
        if not todo:
            llama.n_tokens = kept
            return
        prefix = list(prompt[:static])
        keys = {r: state_key(self.model, prefix, prompt[r[0] : r[1]]) for r in ranges}
        states = {r: self.states.get(keys[r]) for r in todo}
        if any(state is None for state in states.values()):
            # Computing a passage overwrites what follows the static prefix: place every passage again.
            kept = min(kept, static)
            todo = [r for r in ranges if r[1] > kept]
            states = {r: states.get(r) or self.states.get(keys[r]) for r in todo}
        llama.n_tokens = kept
        missing = [r for r in todo if states[r] is None]
        states.update(self._compute(llama, prompt, static, missing, keys))
        memory = llama_cpp.llama_get_memory(llama._ctx.ctx)
        llama_cpp.llama_memory_seq_rm(memory, 0, llama.n_tokens, -1)
        for a, b in todo:
            if llama.n_tokens < a:
                llama.eval(prompt[llama.n_tokens : a])
            state = states[(a, b)]
            if state is None or not self._restore(llama, state, a - static):
                # Not placed (llama.cpp could not copy the state): evaluated as without the cache.
                llama.eval(prompt[a:b])
                continue
            llama.input_ids[a:b] = prompt[a:b]
            # The recomputed tail is evaluated with what follows it (the next number, or the question).
            llama.n_tokens = max(a, b - self.recompute_tokens)
            self.last.placed += 1
            self.last.passage_tokens += b - a
        llama._requires_eval = True

    def _compute(
        self,
        llama: Llama,
        prompt: Sequence[int],
        static: int,
        missing: list[tuple[int, int]],
        keys: dict[tuple[int, int], bytes],
    ) -> dict[tuple[int, int], bytearray | None]:
        """Evaluate each missing passage right after the static prefix and store its state (where the budget
        holds it); returns the states. Leaves `llama` at the static prefix."""
        if not missing:
            return {}
        if llama.n_tokens < static:
            llama.eval(prompt[llama.n_tokens : static])
        context = llama._ctx.ctx
        memory = llama_cpp.llama_get_memory(context)
        fresh: dict[tuple[int, int], bytearray | None] = {}
        for a, b in missing:
            llama.n_tokens = static
            llama.eval(prompt[a:b])
            llama_cpp.llama_memory_seq_cp(memory, 0, SCRATCH_SEQ, static, static + b - a)
            try:
                size = llama_cpp.llama_state_seq_get_size(context, SCRATCH_SEQ)
                state = bytearray(size)
                buffer = (ctypes.c_uint8 * size).from_buffer(state)
                written = llama_cpp.llama_state_seq_get_data(context, buffer, size, SCRATCH_SEQ)
                del buffer
            finally:
                llama_cpp.llama_memory_seq_rm(memory, SCRATCH_SEQ, -1, -1)
            if written != size:
                fresh[(a, b)] = None  # evaluated in place instead
                continue
            self.states.put(keys[(a, b)], state)
            fresh[(a, b)] = state
            self.last.computed += 1
        llama.n_tokens = static
        llama_cpp.llama_memory_seq_rm(memory, 0, static, -1)
        return fresh

    @staticmethod
    def _restore(llama: Llama, state: bytearray, shift: int) -> bool:
        """Restore a passage state into the scratch sequence, shift its positions by `shift` and join it to
        the prompt's sequence (the cells are shared, not copied); False where llama.cpp cannot restore it."""
        context = llama._ctx.ctx
        memory = llama_cpp.llama_get_memory(context)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer(state)
        try:
            if not llama_cpp.llama_state_seq_set_data(context, buffer, len(state), SCRATCH_SEQ):
                return False
            if shift:
                llama_cpp.llama_memory_seq_add(memory, SCRATCH_SEQ, -1, -1, shift)
            llama_cpp.llama_memory_seq_cp(memory, SCRATCH_SEQ, 0, -1, -1)
            return True
        finally:
            del buffer
            llama_cpp.llama_memory_seq_rm(memory, SCRATCH_SEQ, -1, -1)


def prepare_context(llama: Llama) -> None:
    """Give `llama` a context with a second sequence over one unified KV cache (llama-cpp-python builds a
    single-sequence one and has no parameter for it): the scratch sequence passages are shifted in."""
    from contextlib import closing

    from llama_cpp import _internals

    params = llama.context_params
    params.n_seq_max = SCRATCH_SEQ + 1
    params.kv_unified = True
    llama._ctx.close()
    llama._ctx = llama._stack.enter_context(
        closing(_internals.LlamaContext(model=llama._model, params=params, verbose=llama.verbose))
    )
    llama.n_tokens = 0
    memory = llama_cpp.llama_get_memory(llama._ctx.ctx)
    if memory is None or not llama_cpp.llama_memory_can_shift(memory):
        raise ValueError("this model's KV cache cannot shift positions, which the passage cache needs")
