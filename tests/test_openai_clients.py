"""The OpenAI-compatible API through the clients people use: the `openai` package and LangChain's
`ChatOpenAI`, against a live server on 127.0.0.1 (uvicorn in a thread).

The server's embedder, generator and support checker are the test doubles of tests/fakes.py, so these
tests run in seconds; the last test asks the real packaged model once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import uvicorn
from fakes import BagOfWordsEmbedder, KeywordChecker, ScriptedGenerator
from langchain_openai import ChatOpenAI

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings

pytestmark = pytest.mark.slow  # each module starts a server

REPLY = "Erebus holds a lava lake [1]."
SYSTEM = "Answer in one sentence, for a geology student."


def serve(assistant: Assistant) -> Iterator[str]:
    """Serve the app on a free port of 127.0.0.1 until the generator is closed; yields its /v1 URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(assistant), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


def write_corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "erebus.md").write_text("# Erebus\n\nErebus is a volcano that holds a lava lake.\n")
    (docs / "bread.txt").write_text("Bread rises because yeast ferments the dough.\n")
    return docs


@pytest.fixture(scope="module")
def generator() -> ScriptedGenerator:
    return ScriptedGenerator(*[REPLY] * 50)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, generator: ScriptedGenerator) -> Iterator[str]:
    root = tmp_path_factory.mktemp("openai")
    docs = write_corpus(root)
    embedder = BagOfWordsEmbedder()
    settings = Settings(index_dir=root / "indexes" / "main", upload_dir=root / "uploads", min_relevance=-1.0)
    Assistant(
        settings.model_copy(update={"index_dir": root / "indexes" / "kitchen"}), embedder=embedder
    ).ingest([docs / "bread.txt"])
    assistant = Assistant(settings, embedder=embedder, generator=generator, support_checker=KeywordChecker())
    assistant.ingest([docs])
    yield from serve(assistant)


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)


def test_models_are_the_collections(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["main", "kitchen"]


def test_a_completion_cites_in_content_and_in_extra_fields(
    client: openai.OpenAI, generator: ScriptedGenerator
) -> None:
    completion = client.chat.completions.create(
        model="main",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What does Erebus hold?"},
        ],
    )
    content = completion.choices[0].message.content or ""
    assert content.startswith(REPLY) and "\n\nSources:\n[1] Erebus (" in content
    assert completion.model == "main" and completion.usage and completion.usage.completion_tokens > 0
    citations = (completion.model_extra or {})["citations"]
    assert citations[0]["n"] == 1 and citations[0]["document"].endswith("erebus.md")
    system_prompt = generator.calls[-1][0]["content"]
    assert system_prompt.endswith(SYSTEM) and "cite every sentence" in system_prompt


def test_a_stream_ends_with_the_sources_then_the_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="main",
            messages=[{"role": "user", "content": "What does Erebus hold?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(REPLY) and "Sources:\n[1] Erebus" in text
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_an_unknown_model_is_a_404_naming_the_collections(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Erebus?"}])
    assert "gpt-4o" in str(error.value) and "main, kitchen" in str(error.value)


def test_langchain_keeps_the_citations(base_url: str) -> None:
    chat = ChatOpenAI(base_url=base_url, api_key="unused", model="main", max_retries=0, stream_usage=True)
    reply = chat.invoke([("system", SYSTEM), ("human", "What does Erebus hold?")])
    assert (
        isinstance(reply.content, str) and "[1]" in reply.content and "Sources:\n[1] Erebus" in reply.content
    )
    streamed = list(chat.stream("What does Erebus hold?"))
    assert "Sources:\n[1] Erebus" in "".join(str(piece.content) for piece in streamed)
    usage = [piece.usage_metadata for piece in streamed if piece.usage_metadata]
    assert usage and usage[-1]["total_tokens"] > 0


def test_the_real_model_answers_through_the_openai_client(
    tmp_path_factory: pytest.TempPathFactory,
    embedder,  # noqa: ANN001
) -> None:
    root = tmp_path_factory.mktemp("openai-real")
    docs = write_corpus(root)
    assistant = Assistant(
        Settings(index_dir=root / "index", upload_dir=root / "uploads", max_answer_tokens=40),
        embedder=embedder,
    )
    assistant.ingest([docs])
    for base_url in serve(assistant):
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=300)
        completion = client.chat.completions.create(
            model="index", messages=[{"role": "user", "content": "What does the volcano Erebus hold?"}]
        )
        content = completion.choices[0].message.content or ""
        assert "lava lake" in content.lower() and "[1]" in content and "Sources:" in content
