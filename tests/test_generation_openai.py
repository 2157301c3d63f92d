"""Tests of the OpenAI-compatible HTTP backend (rag/generation/openai_http.py).

Fast tests talk to small HTTP servers on 127.0.0.1 that fail on purpose (nothing listening, never answering,
answering 503). The slow ones start one real llama-cpp-python server (`python -m llama_cpp.server`) on the
packaged GGUF for the whole module: the Generator contract, errors, token scores against the in-process
llama.cpp backend, and a cited answer through `Assistant`.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import MODEL_ALIAS, free_port
from contracts import GROUNDED, GeneratorContract
from fakes import BagOfWordsEmbedder

from rag.answering import REFUSAL_PROBE_TOKENS
from rag.api.health import health_status
from rag.api.queue import AnswerQueue
from rag.assistant import Assistant
from rag.config import PACKAGED_GENERATOR, Settings
from rag.errors import ModelUnavailableError
from rag.generation import ContinuationScorer, Generator, build_generator
from rag.generation.openai_http import OpenAIGenerator, ServerOptions, connect
from rag.grounding import NO_ANSWER

# --- Servers that fail on purpose (fast) -----------------------------------------------------------------


def test_no_server_is_one_clear_error_after_the_retries() -> None:
    options = ServerOptions(f"http://127.0.0.1:{free_port()}/v1", retries=2, retry_backoff_seconds=0.01)
    with pytest.raises(ModelUnavailableError) as caught:
        connect(options, None, None)
    message = str(caught.value)
    assert "No OpenAI-compatible server answers" in message and "3 tries" in message
    assert "openai_base_url" in message and "llama_cpp.server" in message


def test_build_generator_with_the_openai_backend_reports_a_down_server() -> None:
    settings = Settings(
        generator_backend="openai", openai_base_url=f"http://127.0.0.1:{free_port()}/v1", openai_retries=0
    )
    with pytest.raises(ModelUnavailableError, match="RAG_OPENAI_BASE_URL"):
        build_generator(settings)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_is_a_timeout_naming_the_setting(silent_server: str) -> None:
    options = ServerOptions(silent_server, timeout_seconds=0.3, retries=1, retry_backoff_seconds=0.01)
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="within 0.3 s.*openai_timeout_seconds"):
        connect(options, None, None)
    assert time.perf_counter() - started < 5


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Answers `GET /v1/models` with 503 `failures` times, then with one model; 404 to everything else."""

    failures = 0
    requests = 0

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        type(self).requests += 1
        if self.path == "/v1/models" and type(self).requests > type(self).failures:
            self._reply(200, b'{"object": "list", "data": [{"id": "tiny", "object": "model"}]}')
        elif self.path == "/v1/models":
            self._reply(503, b'{"error": {"message": "loading the model"}}')
        else:
            self._reply(404, b'{"detail": "Not Found"}')

    def do_POST(self) -> None:  # noqa: N802
        self._reply(404, b'{"detail": "Not Found"}')

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, type[_FlakyHandler]]]:
    handler = type("Handler", (_FlakyHandler,), {"failures": 2, "requests": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_5xx_is_retried_with_backoff_then_served(flaky_server: tuple[str, type[_FlakyHandler]]) -> None:
    url, handler = flaky_server
    started = time.perf_counter()
    generator = connect(ServerOptions(url, retries=2, retry_backoff_seconds=0.1), None, None)
    assert handler.requests == 3 and time.perf_counter() - started >= 0.3  # waited 0.1 + 0.2
    assert generator.model == "tiny" and not isinstance(generator, ContinuationScorer)
    # No tokenize route and no template: estimates and no token scores, both said in plain words.
    assert any("token counts are estimates" in limit for limit in generator.limitations)
    assert any("no token scores" in limit for limit in generator.limitations)
    assert generator.count_tokens("twelve chars") == 4 and generator.count_tokens("") == 0


def test_5xx_beyond_the_retries_is_one_clear_error(flaky_server: tuple[str, type[_FlakyHandler]]) -> None:
    url, handler = flaky_server
    with pytest.raises(ModelUnavailableError, match=r"HTTP 503, 2 tries\): loading the model"):
        connect(ServerOptions(url, retries=1, retry_backoff_seconds=0.01), None, None)
    assert handler.requests == 2


# --- One real llama-cpp-python server on the packaged GGUF (conftest: gguf, server_url; slow) ----------


@pytest.fixture(scope="module")
def served(server_url: str, gguf: Path) -> OpenAIGenerator:
    return connect(ServerOptions(server_url), MODEL_ALIAS, gguf)


@pytest.mark.slow
class TestOpenAIServerGenerator(GeneratorContract):
    """The same contract as the in-process backends, through llama-cpp-python's server."""

    @pytest.fixture
    def generator(self, served: OpenAIGenerator) -> Generator:
        return served

    def test_answers_from_the_source_with_exact_counts(self, served: OpenAIGenerator) -> None:
        stream = served.stream(GROUNDED, max_tokens=24)
        assert "Lakeview" in "".join(stream), stream.text
        assert served.limitations == [] and isinstance(served, ContinuationScorer)
        assert served.count_tokens(stream.text) == stream.stats.completion_tokens


@pytest.mark.slow
def test_a_wrong_model_name_lists_the_served_models(server_url: str) -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        connect(ServerOptions(server_url), "gpt-17", None)
    message = str(caught.value)
    assert "no model named 'gpt-17'" in message and MODEL_ALIAS in message and "openai_model" in message


@pytest.mark.slow
def test_token_scores_match_the_in_process_backend(served: OpenAIGenerator, gguf: Path) -> None:
    """The refusal probability and a judge's Yes/No read over HTTP agree with in-process llama.cpp."""
    from rag.generation.llama_cpp import LlamaCppGenerator

    assert isinstance(served, ContinuationScorer)
    local = LlamaCppGenerator(gguf, threads=2, context_tokens=2048)
    unanswerable = [
        {"role": "system", "content": f"When the source does not say, reply exactly: {NO_ANSWER}"},
        {"role": "user", "content": GROUNDED[0]["content"].replace("capital", "population")},
    ]
    likely = served.continuation_logprob(unanswerable, NO_ANSWER, REFUSAL_PROBE_TOKENS)
    likely_in_process = local.continuation_logprob(unanswerable, NO_ANSWER, REFUSAL_PROBE_TOKENS)
    # Probabilities agree within 2 points (log-probabilities of a few percent differ by tenths between the
    # server's and the in-process batch sizes).
    assert np.exp(likely) == pytest.approx(np.exp(likely_in_process), abs=0.02)
    # An unlikely token outside the server's top alternatives gets the least of them: an upper bound.
    unlikely = served.continuation_logprob(GROUNDED, NO_ANSWER, REFUSAL_PROBE_TOKENS)
    unlikely_in_process = local.continuation_logprob(GROUNDED, NO_ANSWER, REFUSAL_PROBE_TOKENS)
    assert unlikely >= unlikely_in_process - 0.1
    assert np.exp(unlikely) == pytest.approx(np.exp(unlikely_in_process), abs=0.02)
    assert likely > unlikely
    judge = [
        {
            "role": "user",
            "content": "Source: The capital of Freedonia is Lakeview.\nDoes the source say "
            "that Lakeview is the capital of Freedonia? Reply Yes or No.",
        }
    ]
    for reply in ("Yes", "No"):
        over_http = served.continuation_logprob(judge, reply, 1)
        in_process = local.continuation_logprob(judge, reply, 1)
        assert np.exp(over_http) == pytest.approx(np.exp(in_process), abs=0.02)


@pytest.mark.slow
def test_without_a_template_token_scores_are_off_visibly(server_url: str, tmp_path: Path) -> None:
    """No chat template to render with: no refusal probability, said by the generator, the health
    report and the answer itself; the judge refuses to start."""
    plain = connect(ServerOptions(server_url), MODEL_ALIAS, None)
    assert not isinstance(plain, ContinuationScorer)
    assert any("openai_template_gguf" in limit for limit in plain.limitations)
    (tmp_path / "bread.txt").write_text("Bread rises because wild yeast ferments the dough.\n")
    settings = Settings(
        index_dir=tmp_path / "index",
        generator_backend="openai",
        openai_base_url=server_url,
        min_relevance=-1.0,
        max_answer_tokens=12,
    )
    assistant = Assistant(settings, embedder=BagOfWordsEmbedder())
    assistant.ingest([tmp_path / "bread.txt"])
    status = health_status(assistant, AnswerQueue(1))
    assert any("no token scores" in limit for limit in status["generator_limitations"])
    answer = assistant.ask("Why does bread rise?")
    assert answer.refusal_probability is None
    assert any("no token scores" in limit for limit in answer.limitations)
    assert answer.to_dict()["limitations"] == answer.limitations
    judged = Assistant(
        settings.model_copy(update={"support_checker": "judge"}), embedder=BagOfWordsEmbedder()
    )
    with pytest.raises(ModelUnavailableError, match="cannot score tokens"):
        judged.support_checker  # noqa: B018


@pytest.mark.slow
def test_assistant_answers_with_citations_through_the_server(
    server_url: str, tmp_path: Path, embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "orchard.txt").write_text(
        "The Maple Hill orchard grows forty varieties of apple. "
        "Its oldest tree was planted in 1871 by Eliza Thornbury.\n"
    )
    (docs / "harbour.md").write_text("# Port Vell\n\nThe harbour lighthouse is painted green and white.\n")
    settings = Settings(
        index_dir=tmp_path / "index",
        generator_backend="openai",
        openai_base_url=server_url,
        openai_template_gguf=PACKAGED_GENERATOR,
        max_answer_tokens=60,
    )
    assistant = Assistant(settings, embedder=embedder)
    assistant.ingest([docs])
    answer = assistant.ask("Who planted the oldest tree of the Maple Hill orchard?", k=2)
    assert not answer.abstained and "Thornbury" in answer.text, answer.text
    cited = [c for c in answer.citations if Path(c.document).name == "orchard.txt"]
    assert cited and "Thornbury" in cited[0].quote
    assert answer.refusal_probability is not None and answer.refusal_probability < 0.5
    assert answer.timings["first_token_seconds"] <= answer.timings["total_seconds"]
    assert health_status(assistant, AnswerQueue(1))["generator_limitations"] == []
