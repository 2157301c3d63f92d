"""The transformers backend: any Hugging Face chat model (a folder, an id, or a GGUF file it dequantizes).

Slower than llama.cpp on a CPU (the packaged GGUF loads in ~46 s and decodes ~7 tokens/s here), but it
runs models that have no GGUF, and gives a second runtime to check the first against.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from rag.errors import ModelUnavailableError
from rag.generation.base import GenerationStats, GenerationStream


class _StopWhenAsked(StoppingCriteria):
    """Ends `generate` early once the reader has closed the stream, so an abandoned answer frees the CPU."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


class TransformersGenerator:
    """A causal LM run by transformers in bfloat16, streamed through a `TextIteratorStreamer`.

    The model loads in the constructor, once per process; generations run one at a time.
    """

    def __init__(self, model: str, *, gguf_file: str | None, threads: int, allow_downloads: bool) -> None:
        self.name = f"{model}/{gguf_file}" if gguf_file else model
        torch.set_num_threads(threads)
        options: dict[str, Any] = {"local_files_only": not allow_downloads}
        if gguf_file:
            options["gguf_file"] = gguf_file
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(model, **options)
            self._model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16, **options)
        except (OSError, ValueError, ImportError) as error:
            offline = isinstance(error, OSError) and not allow_downloads
            hint = " Downloads are off: give a local folder, or set `allow_downloads`." if offline else ""
            raise ModelUnavailableError(
                f"transformers could not load the model {self.name}: {str(error).rstrip('.')}.{hint}"
            ) from error
        self._model.eval()
        if self._tokenizer.chat_template is None:
            raise ModelUnavailableError(f"{self.name} has no chat template: use an instruction-tuned model.")
        self._special_ids = set(self._tokenizer.all_special_ids)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without special tokens."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        """Log-probability of the reply starting with `continuation` (its first `max_tokens` tokens)."""
        prompt = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if not isinstance(prompt, list):  # newer tokenizers return a BatchEncoding
            prompt = list(prompt["input_ids"])
        wanted = self._tokenizer.encode(continuation, add_special_tokens=False)[:max_tokens]
        ids = torch.tensor([list(prompt) + wanted])
        with self._lock, torch.inference_mode():
            logits = self._model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        return float(logprobs[torch.arange(len(wanted)), torch.tensor(wanted)].sum())

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        """Stream the answer to `messages`; temperature 0 decodes greedily."""
        inputs = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        stats = GenerationStats(prompt_tokens=int(inputs["input_ids"].shape[1]))
        return GenerationStream(self._pieces(inputs, max_tokens, temperature, stats), stats)

    def _pieces(
        self, inputs: Any, max_tokens: int, temperature: float, stats: GenerationStats
    ) -> Iterator[str]:
        with self._lock:
            streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
            stop = threading.Event()
            sampling: dict[str, Any] = (
                {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
                if temperature == 0
                else {"do_sample": True, "temperature": temperature}
            )
            outcome: dict[str, Any] = {}

            def generate() -> None:
                try:
                    outcome["ids"] = self._model.generate(
                        **inputs,
                        max_new_tokens=max_tokens,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhenAsked(stop)]),
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                        **sampling,
                    )
                except BaseException as error:  # re-raised in the reader's thread
                    outcome["error"] = error
                    streamer.end()

            worker = threading.Thread(target=generate, name="rag-transformers-generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            finally:
                stop.set()
                worker.join()
                if "ids" in outcome:
                    generated = outcome["ids"][0, stats.prompt_tokens :].tolist()
                    stats.completion_tokens = sum(1 for token in generated if token not in self._special_ids)
            if "error" in outcome:
                raise outcome["error"]
