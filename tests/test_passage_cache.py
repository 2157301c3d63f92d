"""The passage KV cache: byte accounting, keys, spans (fast); placement on the packaged model (slow)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rag.generation.passage_cache import ENTRY_OVERHEAD_BYTES, StateLRU, state_key, token_spans
from rag.grounding import NO_ANSWER, build_messages, passage_spans
from rag.types import Chunk, Passage


def passage(text: str, doc: str = "d") -> Passage:
    return Passage(Chunk(doc, text, 0, len(text)), 0.9, doc, doc.title())


def test_lru_counts_every_stored_byte_and_evicts_the_oldest() -> None:
    state = bytearray(1000)
    key = state_key("m", [1], [2])
    size = sys.getsizeof(key) + sys.getsizeof(state) + ENTRY_OVERHEAD_BYTES
    assert StateLRU.entry_bytes(key, state) == size
    lru = StateLRU(budget_bytes=2 * size + 10)
    keys = [state_key("m", [1], [n]) for n in range(3)]
    assert lru.put(keys[0], bytearray(1000)) and lru.put(keys[1], bytearray(1000))
    assert lru.bytes_used == 2 * size and len(lru) == 2
    assert lru.get(keys[0]) is not None  # now the most recent: keys[1] goes first
    assert lru.put(keys[2], bytearray(1000))
    assert keys[1] not in lru and keys[0] in lru and keys[2] in lru
    assert lru.bytes_used == 2 * size <= lru.budget_bytes


def test_lru_refuses_a_state_over_the_budget_and_replaces_a_key_in_place() -> None:
    key = state_key("m", [1], [2])
    lru = StateLRU(budget_bytes=StateLRU.entry_bytes(key, bytearray(500)))
    assert not lru.put(key, bytearray(501))
    assert len(lru) == 0 and lru.bytes_used == 0
    assert lru.put(key, bytearray(10)) and lru.put(key, bytearray(500))
    assert len(lru) == 1 and lru.bytes_used == StateLRU.entry_bytes(key, bytearray(500))
    assert lru.get(state_key("m", [1], [3])) is None


def test_state_key_tells_apart_model_prefix_and_passage_tokens() -> None:
    base = state_key("a.gguf", [1, 2], [3, 4])
    assert base == state_key("a.gguf", [1, 2], np.array([3, 4]))
    others = {
        state_key("b.gguf", [1, 2], [3, 4]),
        state_key("a.gguf", [1], [2, 3, 4]),  # same concatenation, other split
        state_key("a.gguf", [1, 2], [3, 5]),
        state_key("a.gguf", [1, 3], [3, 4]),
    }
    assert base not in others and len(others) == 4
    assert len(base) == 32


def test_token_spans_keep_only_spans_on_token_edges() -> None:
    lengths = [3, 2, 4, 1, 5]  # tokens cover bytes [0,3) [3,5) [5,9) [9,10) [10,15)
    assert token_spans(lengths, [(3, 9), (9, 15)]) == [(1, 3), (3, 5)]
    assert token_spans(lengths, [(4, 9), (3, 8), (10, 16)]) == []


def test_passage_spans_cover_each_passage_after_its_number_with_its_blank_line() -> None:
    passages = [passage("First text."), passage("Second  text\nwrapped.", "e")]
    messages = build_messages("Which text?", passages)
    rendered = "".join(f"<{m['role']}>{m['content']}</>" for m in messages)
    spans = passage_spans(rendered)
    assert [rendered[s:e] for s, e in spans] == [" D: First text.\n\n", " E: Second text wrapped.\n\n"]
    assert rendered[spans[1][0] - 3 : spans[1][0]] == "[2]"
    assert rendered[spans[-1][1] :].startswith("Question: Which text?")
    assert passage_spans("no passages here") == []


@pytest.fixture(scope="module")
def generators(gguf: Path):  # noqa: ANN201
    from rag.generation.llama_cpp import LlamaCppGenerator
    from rag.generation.passage_cache import PassageCache

    full = LlamaCppGenerator(gguf, threads=2, context_tokens=2048)
    cache = PassageCache(str(gguf), 64 * 2**20, passage_spans)
    cached = LlamaCppGenerator(gguf, threads=2, context_tokens=2048, passage_cache=cache)
    return full, cached


PASSAGES = [
    passage("The Skerry lighthouse was automated in 1987 and has had no keeper since.", "log"),
    passage("Ferries to the island run twice a day in summer and once a day in winter.", "guide"),
    passage("The island's only shop opens at nine and closes at five, except on Sundays.", "shop"),
]


def first_token_logprobs(generator, messages: list[dict[str, str]]) -> np.ndarray:  # noqa: ANN001
    """The model's log-probabilities of the reply's first token (after scoring a one-token continuation)."""
    from llama_cpp import Llama

    generator.continuation_logprob(messages, NO_ANSWER, 1)
    llama = generator._llama
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    return Llama.logits_to_logprobs(logits).astype(np.float64)


@pytest.mark.slow
def test_cached_passages_give_the_full_prompts_first_token(generators) -> None:  # noqa: ANN001
    full, cached = generators
    agree, kls = 0, []
    for question, passages in [
        ("When was the lighthouse automated?", PASSAGES),
        ("How often do ferries run in winter?", PASSAGES[::-1]),  # same passages, other positions
        ("When does the shop close?", [PASSAGES[1], PASSAGES[2]]),
    ]:
        messages = build_messages(question, passages)
        want = first_token_logprobs(full, messages)
        got = first_token_logprobs(cached, messages)
        assert cached.passage_cache.last.placed == len(passages)
        agree += int(want.argmax() == got.argmax())
        kls.append(float((np.exp(want) * (want - got)).sum()))
    print(f"passage cache vs full prompt: top-1 agreement {agree}/3, KL {[round(k, 4) for k in kls]}")
    assert agree == 3
    assert max(kls) < 0.5
    # A state is keyed by the passage's tokens, not its number: three passages, three states.
    assert len(cached.passage_cache.states) == 3


@pytest.mark.slow
def test_an_answer_with_cached_passages_continues_from_them(generators) -> None:  # noqa: ANN001
    import llama_cpp

    full, cached = generators
    messages = build_messages("How often do ferries run in winter?", PASSAGES)
    cached.continuation_logprob(messages, NO_ANSWER, 3)  # the refusal check, as answering runs it
    context = cached._llama._ctx.ctx
    before = llama_cpp.llama_perf_context(context).n_p_eval
    with cached.stream(messages, max_tokens=24) as stream:
        text = "".join(stream)
    evaluated = llama_cpp.llama_perf_context(context).n_p_eval - before
    assert "once a day" in text.lower() and "[2]" in text
    assert evaluated <= 1  # the stream re-read only the prompt's last token
    with full.stream(messages, max_tokens=24) as stream:
        assert text == "".join(stream)

    # After an unrelated prompt, a new question over stored passages: the passages are placed, not evaluated.
    with cached.stream([{"role": "user", "content": "Say hello."}], max_tokens=4) as stream:
        "".join(stream)
    other = build_messages("When was the lighthouse automated?", PASSAGES)
    before = llama_cpp.llama_perf_context(context).n_p_eval
    with cached.stream(other, max_tokens=24) as stream:
        text = "".join(stream)
    evaluated = llama_cpp.llama_perf_context(context).n_p_eval - before
    placed = cached.passage_cache.last
    assert (placed.placed, placed.computed) == (3, 0)
    assert evaluated <= cached.prompt_tokens(other) - placed.passage_tokens
    assert "1987" in text


@pytest.mark.slow
def test_the_setting_gives_the_llama_cpp_generator_a_cache_of_its_budget() -> None:
    from rag.config import Settings
    from rag.generation import build_generator

    cached = build_generator(Settings(passage_cache=True, passage_cache_mb=64))
    assert cached.passage_cache is not None and cached.passage_cache.states.budget_bytes == 64 * 2**20
    assert build_generator(Settings(passage_cache=True, passage_cache_mb=64)) is cached
    assert build_generator(Settings(passage_cache_mb=64)).passage_cache is None


@pytest.mark.slow
def test_recomputed_passage_ends_are_evaluated_in_place_after_the_passages_before(
    generators, gguf: Path
) -> None:  # noqa: ANN001
    import llama_cpp

    from rag.generation.llama_cpp import LlamaCppGenerator
    from rag.generation.passage_cache import PassageCache

    full, cached = generators
    recompute = 4
    cache = PassageCache(str(gguf), 64 * 2**20, passage_spans, recompute_tokens=recompute)
    blended = LlamaCppGenerator(gguf, threads=2, context_tokens=2048, passage_cache=cache)
    messages = build_messages("When was the lighthouse automated?", PASSAGES)
    first_token_logprobs(cached, messages)
    first_token_logprobs(blended, messages)  # states stored by both

    def evaluated_after_placing(generator: LlamaCppGenerator) -> tuple[int, np.ndarray]:
        generator._llama.n_tokens = 0
        context = generator._llama._ctx.ctx
        before = llama_cpp.llama_perf_context(context).n_p_eval
        logprobs = first_token_logprobs(generator, messages)
        assert generator.passage_cache.last.placed == len(PASSAGES)
        return llama_cpp.llama_perf_context(context).n_p_eval - before, logprobs

    plain, plain_logprobs = evaluated_after_placing(cached)
    more, blended_logprobs = evaluated_after_placing(blended)
    assert more == plain + recompute * len(PASSAGES)
    want = first_token_logprobs(full, messages)
    assert blended_logprobs.argmax() == want.argmax()
    assert float((np.exp(want) * (want - blended_logprobs)).sum()) < 0.5
    assert not np.allclose(blended_logprobs, plain_logprobs)  # the recomputed ends changed the reading
