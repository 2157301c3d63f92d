"""The request guard: no writes from other sites' pages, body limits counted while the body streams in,
and client input that the handlers cannot use is a 4xx, never a 500 (fast: fake embedder and generator)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder, ScriptedGenerator
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.api.guard import is_cross_site, is_write
from rag.assistant import Assistant
from rag.config import Settings

BASE = "http://testserver"


def error_of(response, status: int, kind: str) -> str:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == kind
    return body["error"]["message"]


@pytest.fixture()
def make_client(tmp_path: Path) -> Iterator:
    def make(**settings: object) -> TestClient:
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / "bread.txt").write_text("Bread rises because yeast ferments the dough.\n")
        assistant = Assistant(
            Settings(index_dir=tmp_path / "index", upload_dir=tmp_path / "uploads", **settings),
            embedder=BagOfWordsEmbedder(),
            generator=ScriptedGenerator(),
        )
        assistant.ingest([tmp_path / "docs"])
        return TestClient(create_app(assistant), base_url=BASE)

    yield make


@pytest.fixture()
def client(make_client) -> TestClient:  # noqa: ANN001
    return make_client()


def upload(name: str = "note.txt", text: bytes = b"Honey is made by bees from flower nectar.") -> list:
    return [("files", (name, text))]


# Cross-site writes


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
    ],
)
def test_writes_from_another_site_are_refused(client: TestClient, headers: dict[str, str]) -> None:
    message = error_of(
        client.post("/api/documents", files=upload(), headers=headers), 403, "CrossSiteRequest"
    )
    assert "cors_origins" in message
    error_of(client.delete("/api/documents/docs/bread.txt", headers=headers), 403, "CrossSiteRequest")
    error_of(client.post("/api/search", json={"query": "bread"}, headers=headers), 403, "CrossSiteRequest")
    uploads = client.app.state.service.assistant.settings.upload_dir
    assert not [p for p in uploads.rglob("*") if p.is_file() and p.name[0] != "."], "nothing was saved"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
        {"Origin": BASE},
        {"Sec-Fetch-Site": "same-origin"},
        {},
        {"Authorization": "Bearer k"},
    ],
    ids=["browser-same-origin", "origin-only", "fetch-metadata-only", "no-browser-headers", "api-client"],
)
def test_the_chat_pages_and_api_clients_still_write(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/api/documents", files=upload(), headers=headers).status_code == 202
    assert client.post("/api/search", json={"query": "bread"}, headers=headers).status_code == 200


def test_reads_from_anywhere_and_allowed_origins_pass(make_client) -> None:  # noqa: ANN001
    client = make_client(cors_origins=["http://app.example"])
    allowed = {"Origin": "http://app.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post("/api/documents", files=upload(), headers=allowed).status_code == 202
    other = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert client.get("/api/documents", headers=other).status_code == 200
    error_of(client.post("/api/documents", files=upload(), headers=other), 403, "CrossSiteRequest")


def test_renaming_or_deleting_a_conversation_is_a_write_starting_one_is_not() -> None:
    assert is_write("DELETE", "/api/conversations/abc") and is_write("PATCH", "/api/conversations/abc")
    assert not is_write("POST", "/api/conversations") and not is_write("GET", "/api/conversations/abc")
    assert is_write("POST", "/api/documents") and not is_write("GET", "/api/documents")


def test_cross_site_rule() -> None:
    def cross(allowed: frozenset[str] = frozenset(), **headers: str) -> bool:
        return is_cross_site({k.replace("_", "-").encode(): v.encode() for k, v in headers.items()}, allowed)

    assert cross(origin="http://127.0.0.1:8001", host="127.0.0.1:8000"), "another port is another origin"
    assert not cross(origin="http://127.0.0.1:8000", host="127.0.0.1:8000")
    assert not cross(origin="http://a.example/", host="b", allowed=frozenset({"http://a.example"}))
    assert not cross(sec_fetch_site="none")
    assert not cross(host="127.0.0.1:8000")


# Body limits


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


def test_json_bodies_have_a_limit(make_client) -> None:  # noqa: ANN001
    client = make_client(max_json_mb=0.01)
    big = {"query": "bread " * 4000}
    message = error_of(client.post("/api/search", json=big), 413, "PayloadTooLarge")
    assert "max_json_mb" in message
    streamed = client.post("/api/search", content=chunks(2**20), headers={"content-type": "application/json"})
    assert "max_json_mb" in error_of(streamed, 413, "PayloadTooLarge"), "chunked: counted while it streams"
    chat = {"messages": [{"role": "user", "content": "x" * 20000}]}
    error_of(client.post("/v1/chat/completions", json=chat), 413, "PayloadTooLarge")
    assert client.post("/api/search", json={"query": "bread"}).status_code == 200


def test_a_chunked_upload_is_refused_while_it_streams(make_client) -> None:  # noqa: ANN001
    """Driven at the ASGI level, to count how much of the body the server read before refusing it."""
    app = make_client(max_upload_mb=0.05, max_upload_files=1).app
    head = b"--b\r\nContent-Disposition: form-data; name=files; filename=a.txt\r\n\r\n"
    body = chunks(64 * 2**20)
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        block = head if read == 0 else next(body)
        read += len(block)
        return {"type": "http.request", "body": block, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/documents",
        "raw_path": b"/api/documents",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=b")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert "max_upload_mb" in json.loads(sent[1]["body"])["error"]["message"]
    assert read < 2 * 2**20, "refused once past the limit, long before the end of the 64 MiB body"


# Client input is never a 500


def test_a_long_earlier_message_is_a_422_that_says_why(client: TestClient) -> None:
    messages = [
        {"role": "user", "content": "bread " * 4000},
        {"role": "assistant", "content": "Bread rises."},
        {"role": "user", "content": "Why does bread rise?"},
    ]
    message = error_of(
        client.post("/v1/chat/completions", json={"messages": messages}), 422, "InvalidRequest"
    )
    assert "messages[0]" in message and "16000" in message
    messages[0]["content"] = "bread"
    replies = ["Why does bread rise?", "Bread rises because yeast ferments the dough [1]."]
    client.app.state.service.assistant.generator.replies.extend(replies)
    assert client.post("/v1/chat/completions", json={"messages": messages}).status_code == 200
