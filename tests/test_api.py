"""The JSON API through FastAPI's TestClient, with the real embedder and a real index.

Answer endpoints are exercised on questions the evidence gate refuses, which never reach the language
model; answers from the model are in tests/test_api_llm.py (slow).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.api.uploads import safe_filename
from rag.assistant import Assistant
from rag.config import Settings

UNRELATED = "What is the airspeed velocity of an unladen swallow in Tibet?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "guide").mkdir()
    (folder / "guide" / "volcano.md").write_text(
        "# Volcanoes\n\nMount Erebus is the southernmost active volcano on Earth, in Antarctica.\n\n"
        "## Lava lake\n\nErebus holds one of the few long-lived lava lakes in the world.\n"
    )
    (folder / "bread.txt").write_text(
        "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.\n"
    )
    return folder


def make_client(tmp_path: Path, corpus: Path, embedder, **settings) -> TestClient:  # noqa: ANN001
    assistant = Assistant(
        Settings(
            index_dir=tmp_path / "index",
            upload_dir=tmp_path / "uploads",
            chunk_tokens=64,
            chunk_overlap=8,
            **settings,
        ),
        embedder=embedder,
    )
    assistant.ingest([corpus])
    return TestClient(create_app(assistant))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, corpus: Path, embedder) -> TestClient:  # noqa: ANN001
    return make_client(tmp_path_factory.mktemp("api"), corpus, embedder)


def assert_error(response, status: int, kind: str | None = None) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    if kind:
        assert body["error"]["type"] == kind
    return body["error"]


def sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            events.append((kind, "\n".join(data)))
    return events


def wait_for_job(client: TestClient, job_id: str, headers: dict | None = None) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("ingest job did not finish")


# Status, search, answers


def test_health_reports_index_and_queue(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok"
    assert health["index"]["documents"] == 2
    assert health["queue"]["capacity"] == 9 and health["api_keys_required"] is False


def test_openapi_schema_lists_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/answer",
        "/api/answer/stream",
        "/api/search",
        "/api/documents",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/documents/{doc_id}",
        "/api/documents/{doc_id}/context",
        "/v1/chat/completions",
        "/v1/models",
        "/api/collections",
        "/api/health",
    ):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in docs.text, (
        "no CDN: works offline"
    )
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_search_returns_passages_with_spans(client: TestClient) -> None:
    passages = client.post("/api/search", json={"query": "Which volcano is furthest south?", "k": 2}).json()[
        "passages"
    ]
    assert len(passages) == 2
    top = passages[0]
    assert top["document"].endswith("guide/volcano.md") and top["title"] == "Volcanoes"
    context = client.get(
        f"/api/documents/{top['document']}/context",
        params={"start": top["start"], "end": top["end"], "window": 0},
    ).json()
    assert context["passage"] == top["text"]


@pytest.mark.parametrize("body", [{"query": "   "}, {"query": ""}, {"query": "x", "k": 0}, {}])
def test_search_rejects_bad_input_with_one_error_shape(client: TestClient, body: dict) -> None:
    assert_error(client.post("/api/search", json=body), 422, "InvalidRequest")


def test_answer_abstains_with_the_nearest_passages(client: TestClient) -> None:
    answer = client.post("/api/answer", json={"question": UNRELATED}).json()
    assert answer["abstained"] is True and answer["citations"] == []
    assert answer["passages"] and {"document", "title", "start", "end", "text", "score"} <= set(
        answer["passages"][0]
    )


def test_answer_rejects_bad_input(client: TestClient) -> None:
    assert client.post("/api/answer", json={"question": UNRELATED, "history": []}).status_code == 200
    bad = [{"role": "wizard", "content": "hi"}]
    assert_error(client.post("/api/answer", json={"question": UNRELATED, "history": bad}), 422)
    assert_error(client.post("/api/answer", json={"question": " "}), 422)
    assert_error(
        client.post("/api/answer", content=b"{not json", headers={"content-type": "application/json"}), 422
    )


def test_answer_stream_ends_with_the_whole_answer(client: TestClient) -> None:
    response = client.post("/api/answer/stream", json={"question": UNRELATED})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [kind for kind, _ in events][-1] == "answer"
    final = json.loads(events[-1][1])
    assert final["abstained"] is True and final["passages"]


def test_openai_chat_completion_shape(client: TestClient) -> None:
    body = {
        "model": "index",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": UNRELATED}],
    }
    result = client.post("/v1/chat/completions", json=body).json()
    assert result["object"] == "chat.completion" and result["model"] == "index"
    assert result["choices"][0]["message"]["role"] == "assistant"
    assert result["choices"][0]["message"]["content"] and result["choices"][0]["finish_reason"] == "stop"
    assert result["citations"] == [] and result["rag"]["abstained"] is True
    assert set(result["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_openai_chat_completion_stream_chunks(client: TestClient) -> None:
    body = {"stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": UNRELATED}]}]}
    events = sse_events(client.post("/v1/chat/completions", json=body).text)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == chunks[-1]["rag"]["answer"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and "citations" in chunks[-1]


def test_openai_models_are_the_collections_and_an_unknown_one_is_a_404(client: TestClient) -> None:
    listed = client.get("/v1/models").json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["index"]
    assert listed["data"][0]["object"] == "model" and listed["data"][0]["created"] > 0
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": UNRELATED}]}
    error = assert_error(client.post("/v1/chat/completions", json=body), 404, "ModelNotFoundError")
    assert "'gpt-4o'" in error["message"] and "(index)" in error["message"]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "hi"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        [{"role": "user", "content": "   "}],
    ],
)
def test_openai_needs_a_last_user_message(client: TestClient, messages: list) -> None:
    assert_error(client.post("/v1/chat/completions", json={"messages": messages}), 400, "InvalidInputError")


# Documents


def test_documents_list_and_context_around_a_span(client: TestClient) -> None:
    documents = {d["title"]: d for d in client.get("/api/documents").json()}
    volcano = documents["Volcanoes"]
    assert "/" in volcano["id"] and volcano["chunks"] >= 1
    url = f"/api/documents/{volcano['id']}/context"
    text = client.get(url, params={"start": 0, "end": 0, "window": 5000}).json()["after"]
    start = text.index("Mount Erebus")
    body = client.get(url, params={"start": start, "end": start + 12, "window": 5}).json()
    assert body["passage"] == "Mount Erebus" and body["before"] == text[start - 5 : start]
    assert body["after"] == text[start + 12 : start + 17] and body["context_start"] == start - 5
    assert body["title"] == "Volcanoes" and body["length"] == len(text) and body["page"] is None


def test_context_errors(client: TestClient) -> None:
    volcano = next(d for d in client.get("/api/documents").json() if d["title"] == "Volcanoes")
    url = f"/api/documents/{volcano['id']}/context"
    assert_error(client.get(url, params={"start": 10, "end": 5}), 400, "InvalidInputError")
    assert_error(client.get(url, params={"start": 0, "end": 10**6}), 400, "InvalidInputError")
    assert_error(client.get(url, params={"start": -1, "end": 5}), 422)
    assert_error(
        client.get("/api/documents/no/such/doc/context", params={"start": 0, "end": 1}),
        404,
        "DocumentNotFoundError",
    )


def test_upload_indexes_in_the_background_then_delete(tmp_path: Path, corpus: Path, embedder) -> None:  # noqa: ANN001
    client = make_client(tmp_path, corpus, embedder)
    files = [
        (
            "files",
            ("otters.md", b"# Otters\n\nSea otters hold hands while sleeping so they do not drift apart.\n"),
        ),
        ("files", ("tool.exe", b"MZ\x00\x00")),
        ("files", ("empty.txt", b"")),
    ]
    response = client.post("/api/documents", files=files)
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["id"])
    statuses = {f["name"]: (f["status"], f["error"]) for f in job["files"]}
    assert statuses["otters.md"] == ("indexed", None)
    assert statuses["tool.exe"][0] == "rejected" and "unsupported file type" in statuses["tool.exe"][1]
    assert statuses["empty.txt"] == ("rejected", "file is empty")
    assert job["files_total"] == 1 and job["files_done"] == 1 and job["chunks_embedded"] >= 1
    saved = next(f["path"] for f in job["files"] if f["name"] == "otters.md")
    assert Path(saved).is_file() and Path(saved).parent.parent == (tmp_path / "uploads").resolve()

    top = client.post("/api/search", json={"query": "Why do otters hold hands?", "k": 1}).json()["passages"][
        0
    ]
    assert top["title"] == "Otters"
    removed = client.delete(f"/api/documents/{top['document']}")
    assert removed.status_code == 200 and len(removed.json()["removed"]) == 1
    assert not Path(saved).exists(), "an uploaded file is deleted with its document"
    assert not Path(saved).parent.exists(), "with its folder"
    assert all(d["title"] != "Otters" for d in client.get("/api/documents").json())
    assert_error(client.delete(f"/api/documents/{top['document']}"), 404, "DocumentNotFoundError")


def test_upload_names_never_leave_the_upload_folder(tmp_path: Path, corpus: Path, embedder) -> None:  # noqa: ANN001
    client = make_client(tmp_path, corpus, embedder)
    names = ["../../escape.md", "..\\..\\win.md", "/etc/passwd.txt", ".hidden.md", "a<b>|c.md"]
    files = [("files", (name, b"# Note\n\nSome text.\n")) for name in names]
    job = wait_for_job(client, client.post("/api/documents", files=files).json()["id"])
    saved = sorted(p.name for p in (tmp_path / "uploads").rglob("*") if p.is_file() and p.name[0] != ".")
    assert saved == sorted(["escape.md", "win.md", "passwd.txt", "hidden.md", "a_b_c.md"])
    assert not (tmp_path / "escape.md").exists() and not (tmp_path.parent / "escape.md").exists()
    assert job["status"] == "done" and all(f["status"] in ("indexed", "failed") for f in job["files"])


def test_upload_limits(tmp_path: Path, corpus: Path, embedder) -> None:  # noqa: ANN001
    client = make_client(tmp_path, corpus, embedder, max_upload_mb=0.001, max_upload_files=2)
    big = ("files", ("big.txt", b"word " * 1000))
    job = wait_for_job(client, client.post("/api/documents", files=[big]).json()["id"])
    assert job["files"][0]["status"] == "rejected" and "max_upload_mb" in job["files"][0]["error"]
    three = [("files", (f"n{i}.txt", b"text")) for i in range(3)]
    assert_error(client.post("/api/documents", files=three), 400, "InvalidInputError")
    huge = ("files", ("huge.txt", b"x" * (3 * 2**20)))
    assert_error(client.post("/api/documents", files=[huge]), 413, "PayloadTooLarge")
    assert_error(client.post("/api/documents"), 422, "InvalidRequest")
    assert_error(client.get("/api/jobs/nope"), 404, "JobNotFoundError")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../x.md", "x.md"),
        ("..", "upload"),
        ("", "upload"),
        ("C:\\a\\b.txt", "b.txt"),
        ("über straße.md", "u_ber_stra_e.md"),
        (".env", "env"),
        ("a" * 300 + ".md", None),
    ],
)
def test_safe_filename(name: str, safe: str | None) -> None:
    result = safe_filename(name)
    assert "/" not in result and "\\" not in result and not result.startswith(".")
    assert len(result) <= 120
    if safe is not None and name != "über straße.md":
        assert result == safe


# Security and errors


def test_api_keys_protect_writes(tmp_path: Path, corpus: Path, embedder) -> None:  # noqa: ANN001
    client = make_client(tmp_path, corpus, embedder, api_keys=["s3cret", "other"])
    upload = [("files", ("a.txt", b"Alpha text."))]
    error = assert_error(client.post("/api/documents", files=upload), 401, "Unauthorized")
    assert "X-API-Key" in error["message"]
    assert_error(client.post("/api/documents", files=upload, headers={"X-API-Key": "wrong"}), 401)
    assert_error(client.delete("/api/documents/anything"), 401)
    ok = client.post("/api/documents", files=upload, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 202
    assert client.get(f"/api/jobs/{ok.json()['id']}").status_code == 200
    assert client.post("/api/search", json={"query": "alpha"}).status_code == 200, (
        "reads stay open by default"
    )
    assert_error(client.delete("/api/documents/none", headers={"X-API-Key": "other"}), 404)


def test_api_keys_for_every_endpoint(tmp_path: Path, corpus: Path, embedder) -> None:  # noqa: ANN001
    client = make_client(tmp_path, corpus, embedder, api_keys=["k"], api_keys_for_reads=True)
    assert_error(client.post("/api/search", json={"query": "alpha"}), 401)
    assert_error(client.get("/api/documents"), 401)
    assert_error(client.post("/v1/chat/completions", json={"messages": []}), 401)
    assert client.post("/api/search", json={"query": "alpha"}, headers={"X-API-Key": "k"}).status_code == 200
    assert client.get("/api/health").status_code == 200 and client.get("/").status_code == 200


def test_api_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_KEYS", "one, two,,three")
    monkeypatch.setenv("RAG_CORS_ORIGINS", "http://localhost:3000")
    settings = Settings()
    assert settings.api_keys == ["one", "two", "three"] and settings.cors_origins == ["http://localhost:3000"]


def test_cors_is_off_unless_configured(client: TestClient, tmp_path: Path, corpus: Path, embedder) -> None:  # noqa: ANN001
    origin = {"Origin": "http://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/api/health", headers=origin).headers
    allowed = make_client(tmp_path, corpus, embedder, cors_origins=["http://elsewhere.example"])
    response = allowed.get("/api/health", headers=origin)
    assert response.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_unknown_routes_and_methods_use_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "NotFound")
    assert_error(client.put("/api/answer", json={}), 405, "MethodNotAllowed")


# Pages


def test_pages_render_and_load_their_scripts(client: TestClient) -> None:
    chat = client.get("/")
    assert chat.status_code == 200 and "chat.js" in chat.text and 'id="new-conversation"' in chat.text
    documents = client.get("/documents")
    assert documents.status_code == 200 and "documents.js" in documents.text
    for name in ("common.js", "chat.js", "documents.js", "chat.css"):
        assert client.get(f"/static/{name}").status_code == 200
    script = client.get("/static/chat.js").text + client.get("/static/documents.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
