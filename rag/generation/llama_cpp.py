"""The llama.cpp backend: a GGUF model on the CPU, the fastest runtime here (~5x transformers' decode)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp import Llama, LogitsProcessorList
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from rag.errors import InvalidInputError, ModelUnavailableError
from rag.generation.base import GenerationStats, GenerationStream
from rag.generation.passage_cache import PassageCache, prepare_context


class TopLogprobRecorder:
    """A llama.cpp logits processor that appends, at every step, the log-probability of the most likely
    next token (the one greedy decoding writes) and changes nothing: the answer's own token probabilities
    for the confidence signals, for one log-sum-exp over the vocabulary per token (well under 1 ms)."""

    def __init__(self, sink: list[float]) -> None:
        self.sink = sink

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        top = float(scores.max())
        self.sink.append(-float(np.log(np.exp(scores - top, dtype=np.float64).sum())))
        return scores


class LlamaCppGenerator:
    """A GGUF chat model run by llama-cpp-python, with the chat template stored in the file.

    The model loads in the constructor (under a second for 1.5B Q4); one instance serves the whole
    process, one generation at a time, since a llama.cpp context is not safe to share between threads.
    With a `PassageCache`, the passages of a prompt are placed from stored states instead of evaluated.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int,
        context_tokens: int,
        passage_cache: PassageCache | None = None,
        flash_attention: bool = True,
    ) -> None:
        self.name = Path(model_path).name
        self.model_path = Path(model_path)
        self.context_tokens = context_tokens
        try:
            self._llama = Llama(
                model_path=str(model_path),
                n_ctx=context_tokens,
                n_threads=threads,
                n_threads_batch=threads,
                chat_format="chat_template.default",
                flash_attn=flash_attention,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelUnavailableError(
                f"llama.cpp could not load {model_path}: {error}. Check that it is a complete GGUF file "
                "(or delete it from the model cache to assemble it again)."
            ) from error
        self.passage_cache = passage_cache
        if passage_cache is not None:
            prepare_context(self._llama)
        self._formatter = self._chat_formatter()
        self._lock = threading.Lock()
        self._hidden: tuple[tuple[int, ...], list[float]] | None = None
        self._last_logits: np.ndarray | None = None
        """The logits after the prompt `_eval_prompt_end` last evaluated (valid while `_holds_only` it)."""

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        """The file's own chat template (as `chat_format` selects), rendered as llama-cpp-python renders it,
        to count prompt tokens exactly."""
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelUnavailableError(
                f"{self.model_path} holds no chat template (`tokenizer.chat_template`): use an "
                "instruction-tuned GGUF model."
            )
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self._llama.token_eos()),
            bos_token=self._token_text(self._llama.token_bos()),
            stop_token_ids=[self._llama.token_eos()],
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without BOS or special tokens."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of `messages` once rendered with the chat template, the generation prompt included."""
        return len(self._prompt_ids(messages))

    def _too_long(self, prompt_tokens: int) -> InvalidInputError:
        return InvalidInputError(
            f"The prompt takes {prompt_tokens} tokens, more than the model's context window of "
            f"{self.context_tokens}: raise `context_tokens` or give the model fewer passages (`top_k`)."
        )

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self._rendered(messages)[1]

    def _rendered(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        """The prompt text of `messages` and its tokens."""
        rendered = self._formatter(messages=messages)
        ids = self._llama.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return rendered.prompt, ids

    def _keep_prefix(self, text: str, prompt: list[int]) -> None:
        """Keep in llama.cpp's cache the longest prefix of `prompt[:-1]` it already holds, the rest to be
        evaluated by the caller; with the passage cache, the prompt's passages are placed after that prefix
        from their stored states, so only the question is left to evaluate."""
        llama = self._llama
        llama.n_tokens = Llama.longest_token_prefix(llama.input_ids[: llama.n_tokens].tolist(), prompt[:-1])
        if self.passage_cache is not None:
            self.passage_cache.place(llama, text, prompt)

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        """Log-probability of the reply starting with `continuation`, teacher-forced in the same batch as
        the prompt's last token.

        The prompt is evaluated once and left in llama.cpp's cache with its own last logits, so a
        generation for the same messages right after samples its first token at once, without evaluating
        anything again: the probe costs a few more rows of the prompt's last batch.
        """
        text, prompt = self._rendered(messages)
        wanted = self._llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)[:max_tokens]
        if len(prompt) + len(wanted) > self.context_tokens:
            raise self._too_long(len(prompt))
        with self._lock:
            if len(wanted) == 1 and self._holds_only(prompt) and self._last_logits is not None:
                # One token after the prompt llama.cpp holds with its last logits (the judge's "No" after
                # its "Yes"): read from the same row, nothing evaluated.
                return float(Llama.logits_to_logprobs(self._last_logits)[wanted[0]])
            # eval() drops the cache from n_tokens on: keep the shared prefix, recompute the rest.
            self._keep_prefix(text, prompt)
            rows = self._eval_prompt_end(prompt, wanted[:-1])
            return sum(float(Llama.logits_to_logprobs(rows[i])[token]) for i, token in enumerate(wanted))

    def _holds_only(self, prompt: list[int]) -> bool:
        """Whether llama.cpp holds exactly `prompt`, as `_eval_prompt_end` left it."""
        llama = self._llama
        return llama.n_tokens == len(prompt) and llama.input_ids[: len(prompt)].tolist() == prompt

    def _eval_prompt_end(self, prompt: list[int], forced: Sequence[int] = ()) -> np.ndarray:
        """Evaluate `prompt` past the cached prefix, its last token and then `forced` in one small batch with
        embeddings on, and return that batch's logits: after the prompt, then after each forced token.

        The final hidden state at the end of the prompt is read from the same batch at no extra cost (with
        embeddings on llama.cpp outputs every token of a batch, so the batch is kept small). Afterwards
        llama.cpp holds exactly the prompt, with its own last logits where sampling reads them, so the
        answer to it starts at once (an exact prompt hit in llama-cpp-python).
        """
        llama = self._llama
        llama.eval(prompt[llama.n_tokens : -1])
        tail = [prompt[-1], *forced]
        context = llama._ctx.ctx
        llama_cpp.llama_set_embeddings(context, True)
        try:
            llama._batch.set_batch(batch=tail, n_past=llama.n_tokens, logits_all=True)
            llama._ctx.decode(llama._batch)
            rows = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(tail), llama.n_vocab())).copy()
            width = llama_cpp.llama_model_n_embd(llama._model.model)
            state = np.ctypeslib.as_array(llama_cpp.llama_get_embeddings_ith(context, 0), shape=(width,))
            self._hidden = (tuple(prompt), state.astype(float).tolist())
        finally:
            llama_cpp.llama_set_embeddings(context, False)
        llama.input_ids[len(prompt) - 1] = prompt[-1]
        llama._ctx.kv_cache_seq_rm(-1, len(prompt), -1)  # the forced tokens
        llama.n_tokens = len(prompt)
        last = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),))
        last[:] = rows[0]
        llama._requires_eval = False
        self._last_logits = rows[0]
        return rows

    def prompt_hidden_state(self, messages: list[dict[str, str]]) -> list[float]:
        """The model's final hidden state (after its last norm) at the end of the rendered prompt: read
        while the refusal probability evaluates that prompt, else by evaluating its last token again."""
        text, prompt = self._rendered(messages)
        with self._lock:
            if self._hidden is None or self._hidden[0] != tuple(prompt):
                self._keep_prefix(text, prompt)
                self._eval_prompt_end(prompt)
            assert self._hidden is not None
            return list(self._hidden[1])

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        """Stream the answer to `messages`; temperature 0 decodes greedily."""
        stats = GenerationStats(prompt_tokens=self.prompt_tokens(messages))
        room = self.context_tokens - stats.prompt_tokens
        if room < 1:
            raise self._too_long(stats.prompt_tokens)
        return GenerationStream(self._pieces(messages, min(max_tokens, room), temperature, stats), stats)

    def _pieces(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float, stats: GenerationStats
    ) -> Iterator[str]:
        with self._lock:
            self._last_logits = None
            if self.passage_cache is not None:
                # create_chat_completion evaluates the prompt past the prefix it shares with the last call.
                self._keep_prefix(*self._rendered(messages))
            chunks = self._llama.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                logits_processor=LogitsProcessorList([TopLogprobRecorder(stats.token_logprobs)]),
            )
            written: list[str] = []
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        written.append(piece)
                        yield piece
            finally:
                chunks.close()
                # The stream reports no usage; re-tokenizing the text matches the sampled tokens but for EOS.
                stats.completion_tokens = self.count_tokens("".join(written))
