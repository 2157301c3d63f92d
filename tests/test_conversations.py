"""Stored conversations (rag/conversations.py, rag/api/conversations.py), the answer stream's status
events and Stop, and the original-file route; fast: the embedder, model and checker are the fakes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder, GatedGenerator, KeywordChecker, ScriptedGenerator
from fastapi.testclient import TestClient
from test_api import assert_error, sse_events

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings
from rag.conversations import CONVERSATIONS_FILE, ConversationNotFoundError, ConversationStore


def make_client(tmp_path: Path, generator: object, **overrides: object) -> tuple[TestClient, Assistant]:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "volcano.md").write_text("# Volcanoes\n\nErebus is a volcano with a lava lake.\n")
    (docs / "page.html").write_text("<p>bread and yeast <script>alert(1)</script></p>\n")
    assistant = Assistant(
        Settings(
            index_dir=tmp_path / "index",
            upload_dir=tmp_path / "uploads",
            min_relevance=-1.0,
            **overrides,
        ),
        embedder=BagOfWordsEmbedder(),
        generator=generator,  # type: ignore[arg-type]
        support_checker=KeywordChecker(),
    )
    assistant.ingest([docs])
    return TestClient(create_app(assistant)), assistant


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    generator = ScriptedGenerator(
        "Erebus is a volcano [1].", "It has a lava lake [1].", "Erebus is a volcano [1]."
    )
    return make_client(tmp_path, generator)[0]


def test_a_conversation_keeps_its_answers_and_continues_them(client: TestClient, tmp_path: Path) -> None:
    created = client.post("/api/conversations", json={"title": "Volcano questions"})
    assert created.status_code == 201
    cid = created.json()["id"]
    first = client.post("/api/answer", json={"question": "Which volcano?", "conversation_id": cid}).json()
    assert first["answer"] == "Erebus is a volcano [1]."
    with client.stream(
        "POST", "/api/answer/stream", json={"question": "What does it hold?", "conversation_id": cid}
    ) as response:
        events = sse_events(response.read().decode())
    assert events[-1][0] == "answer"
    generator = client.app.state.service.assistant.generator
    rewrite = " ".join(m["content"] for m in generator.calls[1])
    assert "Which volcano?" in rewrite and "Erebus is a volcano" in rewrite, (
        "the stored turns are the history"
    )

    conversation = client.get(f"/api/conversations/{cid}").json()
    assert conversation["title"] == "Volcano questions"
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", "Which volcano?"),
        ("assistant", "Erebus is a volcano [1]."),
        ("user", "What does it hold?"),
        ("assistant", json.loads(events[-1][1])["answer"]),
    ]
    stored = conversation["messages"][1]["answer"]
    assert stored["citations"][0]["document"].endswith("volcano.md") and stored["passages"]
    assert (tmp_path / "index" / CONVERSATIONS_FILE).is_file(), "stored beside the index"

    listed = client.get("/api/conversations").json()
    assert [(c["id"], c["messages"]) for c in listed] == [(cid, 4)]


def test_rename_export_and_delete(client: TestClient) -> None:
    cid = client.post("/api/conversations").json()["id"]
    client.post("/api/answer", json={"question": "Which volcano?\nOne line more.", "conversation_id": cid})
    renamed = client.patch(f"/api/conversations/{cid}", json={"title": "  Erebus  "})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Erebus"
    assert_error(client.patch(f"/api/conversations/{cid}", json={"title": "   "}), 422)

    markdown = client.get(f"/api/conversations/{cid}/export")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert 'filename="Erebus.md"' in markdown.headers["content-disposition"]
    text = markdown.text
    assert text.startswith("# Erebus\n") and "## Which volcano? One line more." in text
    assert "Erebus is a volcano [1]." in text and "1. Volcanoes (" in text and "volcano.md" in text

    exported = client.get(f"/api/conversations/{cid}/export", params={"format": "json"})
    assert exported.json()["messages"][1]["answer"]["citations"][0]["n"] == 1
    assert_error(client.get(f"/api/conversations/{cid}/export", params={"format": "pdf"}), 422)

    assert client.delete(f"/api/conversations/{cid}").status_code == 204
    for response in (
        client.get(f"/api/conversations/{cid}"),
        client.delete(f"/api/conversations/{cid}"),
        client.post("/api/answer", json={"question": "Which volcano?", "conversation_id": cid}),
    ):
        assert "No conversation" in assert_error(response, 404, "ConversationNotFoundError")["message"]
    assert client.get("/api/conversations").json() == []


def test_the_store_survives_a_restart(tmp_path: Path) -> None:
    store = ConversationStore.beside(tmp_path / "index")
    cid = store.create("A " * 100).id
    store.add_exchange(cid, "Why?", "Because [1].", {"answer": "Because [1].", "citations": []}, False)
    store.add_exchange(cid, "And then?", "It", None, True)
    store.close()
    again = ConversationStore.beside(tmp_path / "index").get(cid)
    assert len(again.title) <= 120 and again.title.endswith("…")
    assert [m.stopped for m in again.messages] == [False, False, False, True]
    assert again.history() == [
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because [1]."},
    ], "a stopped answer and its question are no history"


def test_the_stream_tells_each_step(client: TestClient) -> None:
    with client.stream("POST", "/api/answer/stream", json={"question": "Which volcano?", "k": 2}) as response:
        events = sse_events(response.read().decode())
    statuses = [json.loads(data) for kind, data in events if kind == "status"]
    assert [s["step"] for s in statuses] == ["searching", "reading", "writing", "checking"]
    assert statuses[1]["passages"] == 2
    kinds = [kind for kind, _ in events]
    assert kinds.index("token") > kinds.index("status") and kinds[-1] == "answer"


def test_a_waiting_stream_tells_its_place_then_stop_frees_the_model(tmp_path: Path) -> None:
    generator = GatedGenerator(tokens=400)
    client, assistant = make_client(tmp_path, generator, max_queued_answers=2)
    queue = client.app.state.service.queue
    first: dict[str, list] = {}

    def ask_first() -> None:
        with client.stream("POST", "/api/answer/stream", json={"question": "volcano MARKA"}) as response:
            first["events"] = sse_events(response.read().decode())

    thread = threading.Thread(target=ask_first)
    thread.start()
    deadline = time.monotonic() + 20
    while generator.started < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cid = client.post("/api/conversations").json()["id"]
    with client.stream(
        "POST", "/api/answer/stream", json={"question": "volcano MARKB", "conversation_id": cid}
    ) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data:"):
                assert json.loads(line[5:]) == {"step": "queued", "ahead": 1}
                break
        generator.gate.set()
        for line in lines:  # the first answer finishes, then this one starts writing: Stop it
            if line.startswith("data:") and "MARKB-3" in line:
                break
    thread.join(30)
    deadline = time.monotonic() + 20
    while queue.admitted or generator.running:
        assert time.monotonic() < deadline, "the stopped answer still holds the model"
        time.sleep(0.02)
    assert first["events"][-1][0] == "answer"
    stopped = client.get(f"/api/conversations/{cid}").json()["messages"]
    assert stopped[1]["stopped"] is True and stopped[1]["content"].startswith("MARKB-0 MARKB-1")
    generator.tokens = 2
    assert assistant.ask("volcano MARKC").text == "MARKC-0 MARKC-1"


def test_the_original_file_is_sent_as_an_attachment(client: TestClient) -> None:
    documents = {d["title"]: d["id"] for d in client.get("/api/documents").json()}
    doc_id = documents["Volcanoes"]
    response = client.get(f"/api/documents/{doc_id}/file")
    assert response.status_code == 200 and response.text.startswith("# Volcanoes")
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"
    html = next(i for t, i in documents.items() if t != "Volcanoes")
    served = client.get(f"/api/documents/{html}/file")
    assert served.headers["content-type"] == "application/octet-stream", (
        "an HTML file never renders as a page"
    )
    assert "sandbox" in served.headers["content-security-policy"]
    assert_error(client.get("/api/documents/..%2F..%2Fetc%2Fpasswd/file"), 404)
    assert_error(client.get("/api/documents/../../etc/passwd/file"), 404)


def test_a_citation_spanning_pages_names_the_page_of_its_text_and_the_range() -> None:
    from rag.grounding import with_pages
    from rag.types import Citation, Document, PageSpan

    text = "Foot of page one.\n\nTop of page two holds most of the quoted passage here."
    document = Document("a.pdf", "a.pdf", "A", text, pages=(PageSpan(1, 0, 19), PageSpan(2, 19, len(text))))
    start = text.index("one.")
    cited = with_pages(Citation(1, "a.pdf", "A", 1, start, len(text), text[start:], 0.5), document)
    assert (cited.page, cited.page_start, cited.page_end) == (2, 1, 2)
    inside = with_pages(Citation(1, "a.pdf", "A", 1, 0, 10, text[:10], 0.5), document)
    assert (inside.page, inside.page_start, inside.page_end) == (1, 1, 1)
    plain = Document("a.md", "a.md", "A", text)
    assert with_pages(Citation(1, "a.md", "A", None, 0, 10, text[:10], 0.5), plain).page_start is None


def test_a_server_never_asked_anything_leaves_no_file(tmp_path: Path) -> None:
    store = ConversationStore.beside(tmp_path / "index")
    assert store.list() == []
    with pytest.raises(ConversationNotFoundError):
        store.get("nothing")
    with pytest.raises(ConversationNotFoundError):
        store.delete("nothing")
    assert not (tmp_path / "index").exists()


def test_a_stream_stopped_while_it_waits_leaves_the_queue(tmp_path: Path) -> None:
    generator = GatedGenerator(tokens=3)
    client, _ = make_client(tmp_path, generator, max_queued_answers=2)
    queue = client.app.state.service.queue
    thread = threading.Thread(target=lambda: client.post("/api/answer", json={"question": "volcano MARKA"}))
    thread.start()
    deadline = time.monotonic() + 20
    while generator.started < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with client.stream("POST", "/api/answer/stream", json={"question": "volcano MARKB"}) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                assert json.loads(line[5:]) == {"step": "queued", "ahead": 1}
                break
    while queue.admitted != 1:  # the waiting stream is gone; the first answer still runs
        assert time.monotonic() < deadline, "the stopped stream still holds its place"
        time.sleep(0.02)
    generator.gate.set()
    thread.join(30)
    assert generator.started == 1 and queue.admitted == 0, "the stopped question never reached the model"
