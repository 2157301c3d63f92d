"""The answer endpoints with the real packaged language model (slow: the model loads once per module)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from test_api import sse_events

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings

pytestmark = pytest.mark.slow

QUESTION = "Which volcano is the southernmost active volcano on Earth?"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder) -> TestClient:  # noqa: ANN001
    root = tmp_path_factory.mktemp("llm")
    (root / "docs").mkdir()
    (root / "docs" / "volcano.md").write_text(
        "# Volcanoes\n\nMount Erebus is the southernmost active volcano on Earth, in Antarctica.\n"
    )
    (root / "docs" / "bread.txt").write_text("Sourdough bread rises because wild yeast ferments the dough.\n")
    assistant = Assistant(
        Settings(index_dir=root / "index", upload_dir=root / "uploads", max_answer_tokens=40),
        embedder=embedder,
    )
    assistant.ingest([root / "docs"])
    return TestClient(create_app(assistant))


def test_answer_cites_the_passage(client: TestClient) -> None:
    answer = client.post("/api/answer", json={"question": QUESTION}).json()
    assert "Erebus" in answer["answer"] and not answer["abstained"]
    assert answer["citations"] and answer["citations"][0]["document"].endswith("volcano.md")
    assert answer["timings"]["completion_tokens"] >= 1


def test_stream_sends_tokens_then_the_answer(client: TestClient) -> None:
    events = sse_events(client.post("/api/answer/stream", json={"question": QUESTION}).text)
    kinds = [kind for kind, _ in events]
    assert kinds.count("token") >= 2 and kinds[-1] == "answer" and "error" not in kinds
    streamed = "".join(json.loads(data)["text"] for kind, data in events if kind == "token")
    final = json.loads(events[-1][1])
    assert final["answer"].strip() and "Erebus" in streamed and final["citations"]


def test_openai_stream_keeps_the_citations(client: TestClient) -> None:
    body = {
        "stream": True,
        "messages": [
            {"role": "user", "content": "Tell me about bread."},
            {"role": "assistant", "content": "Sourdough rises thanks to wild yeast."},
            {"role": "user", "content": QUESTION},
        ],
    }
    events = sse_events(client.post("/v1/chat/completions", json=body).text)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Erebus" in text
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["citations"] and last["citations"][0]["document"].endswith("volcano.md")


def test_follow_up_uses_the_history(client: TestClient) -> None:
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Mount Erebus is the southernmost active volcano on Earth [1]."},
    ]
    answer = client.post(
        "/api/answer", json={"question": "On which continent is it?", "history": history}
    ).json()
    assert "antarctica" in answer["answer"].lower() and answer["citations"]
