"""Collections and per-question options through the API: several indexes served by one app, each chosen
per request, sharing one embedder and one generator; document filters; retrieval and grounding modes.

The embedder and the generator are the test doubles of tests/fakes.py (no model loads); the indexes,
the Assistant and the app are real.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder, KeywordChecker, ScriptedGenerator
from fastapi.testclient import TestClient
from test_api import assert_error

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings


def _settings(root: Path, name: str, **overrides: object) -> Settings:
    return Settings(
        index_dir=root / "indexes" / name,
        upload_dir=root / "uploads",
        chunk_tokens=64,
        chunk_overlap=8,
        min_relevance=-1.0,
        **overrides,
    )


@pytest.fixture(scope="module")
def app_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Assistant, ScriptedGenerator]:
    tmp_path = tmp_path_factory.mktemp("collections")
    docs = tmp_path / "docs"
    (docs / "volcanoes").mkdir(parents=True)
    (docs / "kitchen").mkdir()
    (docs / "volcanoes" / "erebus.md").write_text("# Erebus\n\nErebus is a volcano with a lava lake.\n")
    (docs / "volcanoes" / "etna.md").write_text("# Etna\n\nEtna is a volcano whose lava reaches the sea.\n")
    (docs / "kitchen" / "bread.txt").write_text("Bread rises because yeast ferments the dough.\n")
    embedder = BagOfWordsEmbedder()
    Assistant(_settings(tmp_path, "kitchen"), embedder=embedder).ingest([docs / "kitchen"])
    generator = ScriptedGenerator(*["Erebus is a volcano [1]."] * 10)
    default = Assistant(
        _settings(tmp_path, "main"), embedder=embedder, generator=generator, support_checker=KeywordChecker()
    )
    default.ingest([docs / "volcanoes"])
    return TestClient(create_app(default)), default, generator


def test_collections_are_listed_default_first(app_parts) -> None:  # noqa: ANN001
    client, _, _ = app_parts
    listed = client.get("/api/collections").json()
    assert [(c["name"], c["default"]) for c in listed] == [("main", True), ("kitchen", False)]
    assert listed[0]["documents"] == 2 and listed[1]["documents"] == 1 and listed[1]["chunks"] >= 1


def test_each_request_searches_its_collection_and_the_models_load_once(app_parts) -> None:  # noqa: ANN001
    client, default, _ = app_parts
    kitchen = client.post("/api/search", json={"question": "yeast bread", "collection": "kitchen"}).json()
    assert {p["document"].rsplit("/", 1)[-1] for p in kitchen["passages"]} == {"bread.txt"}
    main = client.post("/api/search", json={"question": "yeast bread"}).json()
    assert {p["document"].rsplit("/", 1)[-1] for p in main["passages"]} == {"erebus.md", "etna.md"}
    collections = client.app.state.service.collections
    other = collections.get("kitchen")
    assert other is not default and other.embedder is default.embedder
    assert other.generator is default.generator
    assert other.answerer.generation_lock is default.answerer.generation_lock
    documents = client.get("/api/documents", params={"collection": "kitchen"}).json()
    assert [d["id"].rsplit("/", 1)[-1] for d in documents] == ["bread.txt"]


def test_an_unknown_collection_is_a_404_naming_the_collections(app_parts) -> None:  # noqa: ANN001
    client, _, _ = app_parts
    error = assert_error(client.post("/api/answer", json={"question": "lava?", "collection": "attic"}), 404)
    assert "attic" in error["message"] and "main, kitchen" in error["message"]
    assert_error(client.get("/api/documents", params={"collection": "../main"}), 400)


def test_an_answer_is_limited_to_the_documents_named(app_parts) -> None:  # noqa: ANN001
    client, _, generator = app_parts
    etna = next(d["id"] for d in client.get("/api/documents").json() if d["id"].endswith("etna.md"))
    answer = client.post(
        "/api/answer", json={"question": "Which volcano has a lava lake?", "documents": [etna]}
    ).json()
    assert {p["document"] for p in answer["passages"]} == {etna}
    assert "Etna is a volcano" in generator.calls[-1][-1]["content"]
    assert "Erebus is a volcano with" not in generator.calls[-1][-1]["content"]
    for route in ("/api/search", "/api/answer", "/api/answer/stream"):
        error = assert_error(client.post(route, json={"question": "lava", "documents": ["nowhere.md"]}), 400)
        assert "nowhere.md" in error["message"]


def test_search_takes_question_or_its_former_name_query(app_parts) -> None:  # noqa: ANN001
    client, _, _ = app_parts
    by_question = client.post("/api/search", json={"question": "lava lake", "k": 1}).json()
    by_query = client.post("/api/search", json={"query": "lava lake", "top_k": 1}).json()
    assert by_question == by_query and len(by_question["passages"]) == 1
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]
    assert "question" in schema["required"] and "retrieval_mode" in schema["properties"]


def test_per_question_options_are_validated_and_used(app_parts) -> None:  # noqa: ANN001
    client, _, _ = app_parts
    assert_error(client.post("/api/search", json={"question": "lava", "retrieval_mode": "psychic"}), 422)
    assert_error(client.post("/api/answer", json={"question": "lava", "grounding_mode": "lenient"}), 422)
    assert_error(client.post("/api/answer", json={"question": "lava", "top_k": 0}), 422)
    bm25 = client.post("/api/search", json={"question": "lava sea", "retrieval_mode": "bm25"}).json()
    dense = client.post("/api/search", json={"question": "lava sea", "retrieval_mode": "dense"}).json()
    assert bm25["passages"][0]["document"].endswith("etna.md")
    assert [p["rank_score"] for p in bm25["passages"]] != [p["rank_score"] for p in dense["passages"]]
    off = client.post("/api/answer", json={"question": "lava lake?", "grounding_mode": "off", "k": 1}).json()
    assert off["sentences"] and all(s["supported"] is None for s in off["sentences"])
    flagged = client.post("/api/answer", json={"question": "lava lake?", "k": 1}).json()
    assert all(s["supported"] is not None for s in flagged["sentences"])


def test_an_upload_to_a_new_collection_starts_it(app_parts) -> None:  # noqa: ANN001
    client, default, _ = app_parts
    files = {"files": ("honey.txt", b"Bees make honey from flower nectar.\n", "text/plain")}
    job = client.post("/api/documents", params={"collection": "garden"}, files=files).json()
    deadline = time.monotonic() + 60
    while job["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(f"/api/jobs/{job['id']}", params={"collection": "garden"}).json()
    assert job["status"] == "done" and job["files"][0]["status"] == "indexed", job
    assert "/garden/" in job["files"][0]["path"].replace("\\", "/")
    assert "garden" in [c["name"] for c in client.get("/api/collections").json()]
    found = client.post("/api/search", json={"question": "honey bee", "collection": "garden"}).json()
    assert [p["document"].rsplit("/", 1)[-1] for p in found["passages"]] == ["honey.txt"]
    assert client.get("/api/documents").json() and all(
        not d["id"].endswith("honey.txt") for d in client.get("/api/documents").json()
    )
    assert client.app.state.service.collections.get("garden").embedder is default.embedder
