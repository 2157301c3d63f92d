"""The answer queue: one generation at a time, a bounded wait, 503 beyond it, streams never mixed.

The model here is a test double (`GatedGenerator`) so the tests can hold a generation open at will;
everything else (embedder, index, Assistant, app) is real.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fakes import GatedGenerator
from fastapi.testclient import TestClient
from test_api import assert_error, sse_events

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings


@pytest.fixture()
def setup(tmp_path: Path, embedder) -> tuple[TestClient, GatedGenerator, Assistant]:  # noqa: ANN001
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "volcano.md").write_text(
        "# Volcanoes\n\nMount Erebus is an active volcano in Antarctica.\n"
    )
    generator = GatedGenerator()
    assistant = Assistant(
        Settings(
            index_dir=tmp_path / "index",
            upload_dir=tmp_path / "uploads",
            min_relevance=-1.0,
            min_confidence=0.0,  # the scripted model's answers carry no real confidence
            max_queued_answers=1,
        ),
        embedder=embedder,
        generator=generator,
    )
    assistant.ingest([tmp_path / "docs"])
    return TestClient(create_app(assistant)), generator, assistant


def wait_until(condition, seconds: float = 20) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_full_queue_answers_503_with_retry_after(setup) -> None:  # noqa: ANN001
    client, generator, _ = setup
    app_queue = client.app.state.service.queue
    results: dict[str, dict] = {}

    def ask(mark: str) -> None:
        results[mark] = client.post("/api/answer", json={"question": f"Erebus volcano {mark}"}).json()

    first = threading.Thread(target=ask, args=("MARKA",))
    first.start()
    wait_until(lambda: generator.started == 1)
    second = threading.Thread(target=ask, args=("MARKB",))
    second.start()
    wait_until(lambda: app_queue.admitted == 2)

    for path, body in [
        ("/api/answer", {"question": "Erebus MARKC"}),
        ("/api/answer/stream", {"question": "Erebus MARKC"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Erebus MARKC"}]}),
    ]:
        response = client.post(path, json=body)
        error = assert_error(response, 503, "ServerBusy")
        assert int(response.headers["retry-after"]) >= 1 and "max_queued_answers" in error["message"]
    search = client.post("/api/search", json={"query": "volcano"})
    assert search.status_code == 200, "search does not wait for the model"
    assert client.get("/api/health").json()["queue"] == {"admitted": 2, "capacity": 2}

    generator.gate.set()
    first.join(30)
    second.join(30)
    assert results["MARKA"]["answer"] == " ".join(f"MARKA-{i}" for i in range(5))
    assert results["MARKB"]["answer"] == " ".join(f"MARKB-{i}" for i in range(5))
    assert generator.most_running == 1, "one generation at a time"
    assert app_queue.admitted == 0
    assert client.post("/api/answer", json={"question": "Erebus MARKD"}).status_code == 200


def test_concurrent_streams_never_mix(setup) -> None:  # noqa: ANN001
    client, generator, assistant = setup
    client.app.state.service.queue.capacity = 5
    generator.gate.set()
    streams: dict[str, list[tuple[str, str]]] = {}

    def stream(mark: str) -> None:
        response = client.post("/api/answer/stream", json={"question": f"Erebus volcano {mark}"})
        streams[mark] = sse_events(response.text)

    threads = [threading.Thread(target=stream, args=(f"MARK{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(streams) == 4
    for mark, events in streams.items():
        tokens = [json.loads(data)["text"] for kind, data in events if kind == "token"]
        assert tokens == [f"{mark}-{i} " for i in range(5)]
        final = json.loads(events[-1][1])
        assert events[-1][0] == "answer" and final["answer"] == "".join(tokens).strip()
    assert generator.most_running == 1


def test_a_stream_closed_early_frees_the_model(setup) -> None:  # noqa: ANN001
    client, generator, _ = setup
    generator.tokens = 200
    generator.gate.set()
    with client.stream("POST", "/api/answer/stream", json={"question": "Erebus MARKX"}) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                break
    wait_until(lambda: client.app.state.service.queue.admitted == 0)
    generator.tokens = 2
    answer = client.post("/api/answer", json={"question": "Erebus MARKY"}).json()
    assert answer["answer"] == "MARKY-0 MARKY-1"
