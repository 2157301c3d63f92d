"""The OpenAI-compatible HTTP backend: a model served by vLLM, llama.cpp's server, Ollama or a hosted API.

Answers stream from `POST {base}/chat/completions`. Token counts come from the server's tokenizer where it
has an endpoint for it (`/tokenize` of vLLM and llama.cpp's server, `/extras/tokenize` of llama-cpp-python's
server), else from an estimate that `limitations` names. Token log-probabilities (the refusal probability
and the judge) are read from `POST {base}/completions` with `logprobs`, one request per continuation token,
on the prompt rendered by the chat template of a local GGUF of the served model (`openai_template_gguf`);
where either is missing, the generator is built without `continuation_logprob` and says why in
`limitations`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rag.errors import InvalidInputError, ModelUnavailableError
from rag.generation.base import GenerationStats, GenerationStream

TOP_LOGPROBS = 20
"""Alternatives asked per scored token: the most vLLM gives by default (OpenAI's legacy API gives 5)."""

CHARS_PER_TOKEN_ESTIMATE = 3.0
"""Characters per token assumed when the server cannot tokenize: fewer than English averages (~4), so
prompt budgets err on the short side."""

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ServerOptions:
    """Where the server is and how patiently to talk to it."""

    base_url: str
    api_key: str | None = None
    timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 5.0
    retries: int = 2
    retry_backoff_seconds: float = 0.5

    @property
    def root_url(self) -> str:
        """The server's root, where vLLM and llama.cpp keep their non-OpenAI routes (`/tokenize`)."""
        base = self.base_url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base


class OpenAIServer:
    """An HTTP client of one OpenAI-compatible server: retries with exponential backoff on connection
    failures, timeouts and 408/429/5xx, and one clear project error for everything else."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        timeout = httpx.Timeout(options.timeout_seconds, connect=options.connect_timeout_seconds)
        self._client = httpx.Client(headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def url(self, path: str, *, root: bool = False) -> str:
        base = self.options.root_url if root else self.options.base_url.rstrip("/")
        return f"{base}/{path.lstrip('/')}"

    def get(self, path: str) -> dict[str, Any]:
        return self._json(lambda: self._client.get(self.url(path)), self.url(path))

    def post(self, path: str, body: dict[str, Any], *, root: bool = False) -> dict[str, Any]:
        url = self.url(path, root=root)
        return self._json(lambda: self._client.post(url, json=body), url)

    def models(self) -> list[str]:
        """The model names the server serves (`GET /models`)."""
        return [str(model["id"]) for model in self.get("models").get("data", [])]

    def stream_events(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON events of a server-sent-event response; retried only until the response starts."""
        url = self.url(path)
        response = self._send(
            lambda: self._client.send(self._client.build_request("POST", url, json=body), stream=True), url
        )
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments and pings
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                yield json.loads(data)
        except httpx.TimeoutException as error:
            raise self._timeout(url, error) from error
        except httpx.TransportError as error:
            raise ModelUnavailableError(f"The server at {url} broke off its answer: {error}.") from error
        finally:
            response.close()

    def _json(self, send: Callable[[], httpx.Response], url: str) -> dict[str, Any]:
        response = self._send(send, url)
        try:
            return response.json()
        except ValueError as error:
            raise ModelUnavailableError(
                f"The server at {url} answered HTTP {response.status_code} with something other than JSON: "
                f"{response.text[:200]!r}. Is `openai_base_url` an OpenAI-compatible API (ending in /v1)?"
            ) from error

    def _send(self, send: Callable[[], httpx.Response], url: str) -> httpx.Response:
        """`send()` until it succeeds or the retries are spent; a 4xx other than 408/429 is not retried."""
        options = self.options
        for attempt in range(options.retries + 1):
            last = attempt == options.retries
            try:
                response = send()
            except httpx.TimeoutException as error:
                if last:
                    raise self._timeout(url, error) from error
            except httpx.TransportError as error:
                if last:
                    reason = str(error) or type(error).__name__
                    raise ModelUnavailableError(
                        f"No OpenAI-compatible server answers at {options.base_url} ({reason}, {attempt + 1} "
                        "tries): start it (e.g. `python -m llama_cpp.server --model <file.gguf>` or "
                        "`vllm serve <model>`), or fix `openai_base_url` (RAG_OPENAI_BASE_URL)."
                    ) from error
            else:
                if response.status_code < 400:
                    return response
                if last or response.status_code not in _RETRY_STATUS:
                    raise self._refusal(url, response, attempt + 1)
                response.close()
            time.sleep(options.retry_backoff_seconds * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _timeout(self, url: str, error: Exception) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"The server at {url} did not answer within {self.options.timeout_seconds:g} s "
            f"({type(error).__name__}, {self.options.retries + 1} tries): raise `openai_timeout_seconds` "
            "(RAG_OPENAI_TIMEOUT_SECONDS) or check the server's load."
        )

    def _refusal(
        self, url: str, response: httpx.Response, tries: int
    ) -> ModelUnavailableError | InvalidInputError:
        if response.is_stream_consumed is False:
            response.read()
        detail = _error_detail(response)
        status = response.status_code
        response.close()
        if status in (401, 403):
            return ModelUnavailableError(
                f"The server at {url} refused the API key (HTTP {status}: {detail}): set RAG_OPENAI_API_KEY."
            )
        if status >= 500 or status in _RETRY_STATUS:
            return ModelUnavailableError(
                f"The server at {url} failed (HTTP {status}, {tries} tries): {detail}"
            )
        return InvalidInputError(f"The server at {url} refused the request (HTTP {status}): {detail}")


def _error_detail(response: httpx.Response) -> str:
    """The message of an OpenAI-style error body (`{"error": {"message": ...}}`, `{"detail": ...}`)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if error or body.get("detail") or body.get("message"):
            return str(error or body.get("detail") or body.get("message"))[:300]
    return json.dumps(body)[:300]


class ChatTemplate:
    """The chat template stored in a GGUF file, rendered as llama-cpp-python renders it (so a prompt
    rendered here matches the one llama-cpp-python's server builds for the same messages). Only the
    file's vocabulary is loaded, not its weights."""

    def __init__(self, gguf_path: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            vocab = Llama(model_path=str(gguf_path), vocab_only=True, n_ctx=16, verbose=False)
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelUnavailableError(
                f"Cannot read the chat template of {gguf_path} ({error}): fix `openai_template_gguf`."
            ) from error
        template = vocab.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelUnavailableError(f"{gguf_path} holds no chat template: fix `openai_template_gguf`.")
        eos, bos = (
            vocab._model.token_get_text(t) if t >= 0 else "" for t in (vocab.token_eos(), vocab.token_bos())
        )
        self.source = Path(gguf_path).name
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def render(self, messages: list[dict[str, str]]) -> str:
        """`messages` as prompt text, ending where the assistant's reply begins."""
        return self._formatter(messages=messages).prompt


@dataclass
class ServerTokenizer:
    """The server's tokenize route: its path, its request body, the matching detokenize route, and how many
    tokens it adds in front of any text (a BOS some servers add)."""

    path: str
    body: Callable[[str], dict[str, Any]]
    detokenize_path: str
    overhead: int = 0


def find_tokenizer(server: OpenAIServer, model: str) -> ServerTokenizer | None:
    """The first tokenize route the server answers (vLLM's, llama.cpp server's, llama-cpp-python's)."""
    candidates = [
        ServerTokenizer(
            "tokenize",
            lambda text: {"model": model, "prompt": text, "add_special_tokens": False},
            "detokenize",
        ),
        ServerTokenizer("tokenize", lambda text: {"content": text, "add_special": False}, "detokenize"),
        ServerTokenizer("extras/tokenize", lambda text: {"model": model, "input": text}, "extras/detokenize"),
    ]
    for candidate in candidates:
        try:
            probe = server.post(candidate.path, candidate.body("Hello"), root=True)
            if not isinstance(probe.get("tokens"), list) or not probe["tokens"]:
                continue
            empty = server.post(candidate.path, candidate.body(""), root=True).get("tokens", [])
        except (InvalidInputError, ModelUnavailableError):
            continue
        candidate.overhead = len(empty)
        return candidate
    return None


@dataclass
class OpenAIGenerator:
    """A chat model behind an OpenAI-compatible server; `limitations` lists what it cannot do there.

    One connection pool per process; the `Answerer`'s lock keeps generations one at a time, as for the
    in-process backends (the server may serve other clients at the same time).
    """

    server: OpenAIServer
    model: str
    tokenizer: ServerTokenizer | None = None
    template: ChatTemplate | None = None
    limitations: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.model} at {self.server.options.base_url}"
        self._token_texts: dict[str, list[str]] = {}

    def check(self) -> None:
        """Raise the error `connect` would unless the server still answers and serves this model."""
        served_model(self.server, self.model)

    # Tokens -------------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the server's tokenizer, or an estimate (see `limitations`) if it has none."""
        if not text:
            return 0
        tokens = self._tokenize(text)
        if tokens is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)
        return len(tokens)

    def _tokenize(self, text: str) -> list[int] | None:
        if self.tokenizer is None:
            return None
        tokens = self.server.post(self.tokenizer.path, self.tokenizer.body(text), root=True).get("tokens", [])
        return [int(token) for token in tokens][self.tokenizer.overhead :]

    def _token_pieces(self, text: str) -> list[str]:
        """`text` cut into the texts of its tokens (cached: the scored continuations are few and fixed)."""
        if text not in self._token_texts:
            tokens = self._tokenize(text)
            if tokens is None or self.tokenizer is None:
                raise ModelUnavailableError("The server cannot tokenize, so it cannot score continuations.")
            pieces: list[str] = []
            done = ""
            for end in range(1, len(tokens) + 1):
                body = {"model": self.model, "tokens": tokens[:end]}
                decoded = self.server.post(self.tokenizer.detokenize_path, body, root=True)
                prefix = str(decoded.get("text", decoded.get("prompt", decoded.get("content", ""))))
                pieces.append(prefix[len(done) :])
                done = prefix
            self._token_texts[text] = pieces
        return self._token_texts[text]

    # Generation ---------------------------------------------------------------------------------------

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        """Stream the answer to `messages` from `/chat/completions`; temperature 0 decodes greedily."""
        stats = GenerationStats()
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        return GenerationStream(self._pieces(messages, body, stats), stats)

    def _pieces(
        self, messages: list[dict[str, str]], body: dict[str, Any], stats: GenerationStats
    ) -> Iterator[str]:
        written: list[str] = []
        usage: dict[str, Any] = {}
        events = self.server.stream_events("chat/completions", body)
        try:
            for event in events:
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        written.append(piece)
                        yield piece
        finally:
            events.close()
            # Servers that report no usage in the stream (llama-cpp-python's) are counted by their tokenizer.
            stats.prompt_tokens = int(usage.get("prompt_tokens") or self._prompt_tokens(messages))
            stats.completion_tokens = int(
                usage.get("completion_tokens") or self.count_tokens("".join(written))
            )

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        if self.template is not None:
            return self.count_tokens(self.template.render(messages))
        return sum(self.count_tokens(message["content"]) for message in messages)


class ScoringOpenAIGenerator(OpenAIGenerator):
    """An `OpenAIGenerator` whose server returns token log-probabilities: a `ContinuationScorer`."""

    template: ChatTemplate

    def continuation_logprob(
        self, messages: list[dict[str, str]], continuation: str, max_tokens: int
    ) -> float:
        """Log-probability of the reply starting with `continuation`, teacher-forced one token a request.

        Each request asks `/completions` for one token after the rendered prompt and the continuation so
        far, with its `TOP_LOGPROBS` most likely alternatives; the server's prefix cache keeps the prompt's
        prefill for the next request and for the answer. A wanted token outside those alternatives gets the
        least likely of them (an upper bound: the probability is small either way).
        """
        prompt = self.template.render(messages)
        pieces = self._token_pieces(continuation)[:max_tokens]
        total = 0.0
        for i, piece in enumerate(pieces):
            alternatives = self.next_token_logprobs(prompt + "".join(pieces[:i]))
            total += alternatives.get(piece, min(alternatives.values()))
        return total

    def next_token_logprobs(self, prompt: str) -> dict[str, float]:
        """The most likely next tokens after `prompt` (raw text, no template) and their log-probabilities."""
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": TOP_LOGPROBS,
            # Streamed: llama-cpp-python then reads the one row of logits it needs, not every prompt row.
            "stream": True,
        }
        top: dict[str, float] = {}
        events = self.server.stream_events("completions", body)
        try:
            for event in events:
                for choice in event.get("choices") or []:
                    alternatives = (choice.get("logprobs") or {}).get("top_logprobs") or []
                    top = top or (alternatives[0] if alternatives and alternatives[0] else {})
        finally:
            events.close()
        if not top:
            raise ModelUnavailableError(
                f"The server at {self.server.options.base_url} returned no token log-probabilities "
                "(`logprobs` in its /completions reply)."
            )
        return {str(token): float(logprob) for token, logprob in top.items()}


def connect(options: ServerOptions, model: str | None, template_gguf: Path | None) -> OpenAIGenerator:
    """The generator of `model` on the server `options` name, checked to be served there; with token scoring
    when the server returns log-probabilities and `template_gguf` gives the chat template to render with."""
    server = OpenAIServer(options)
    model = served_model(server, model)
    template = ChatTemplate(template_gguf) if template_gguf is not None else None
    tokenizer = find_tokenizer(server, model)
    plain = OpenAIGenerator(server, model, tokenizer, template)
    if tokenizer is None:
        plain.limitations += [
            f"token counts are estimates ({CHARS_PER_TOKEN_ESTIMATE:g} characters a token): the server has "
            "no tokenize route (/tokenize, /extras/tokenize)",
            _NO_SCORES + "the server cannot cut continuations into tokens",
        ]
        return plain
    if template is None:
        plain.limitations.append(
            _NO_SCORES
            + "`openai_template_gguf` names no local GGUF of the served model to render prompts with"
        )
        return plain
    scorer = ScoringOpenAIGenerator(server, model, tokenizer, template)
    try:
        scorer.next_token_logprobs(template.render([{"role": "user", "content": "Hello"}]))
    except (ModelUnavailableError, InvalidInputError) as error:
        plain.limitations.append(f"{_NO_SCORES}{error}")
        return plain
    return scorer


_NO_SCORES = "no token scores (the refusal probability is not measured; the judge cannot run): "


def served_model(server: OpenAIServer, model: str | None) -> str:
    """`model` once the server lists it, or the one model it serves when `model` is None."""
    base_url = server.options.base_url
    served = server.models()
    if model is None:
        if len(served) != 1:
            raise ModelUnavailableError(
                f"The server at {base_url} serves {len(served)} models "
                f"({', '.join(served) or 'none'}): name one in `openai_model` (RAG_OPENAI_MODEL)."
            )
        return served[0]
    if model not in served:
        raise ModelUnavailableError(
            f"The server at {base_url} serves no model named {model!r}; it serves: "
            f"{', '.join(served) or 'none'}. Fix `openai_model` (RAG_OPENAI_MODEL)."
        )
    return model
