"""API fuzz: random JSON shaped by each request schema of the app's OpenAPI document, random JSON of any
shape, random bytes under right and wrong content types, and random path and query values, sent to every
operation of the real app (fakes for the models: fast). Never a 500; every error is the one
ErrorResponse shape, `{"error": {"type", "message"}}`.

Fixed seed (derandomized hypothesis), a bounded number of examples per operation: about 15 s on 2 cores.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fakes import BagOfWordsEmbedder, ScriptedGenerator
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings
from rag.generation import GenerationStream

EXAMPLES = 30
BYTES_EXAMPLES = 15
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class EndlessGenerator(ScriptedGenerator):
    """A scripted generator that never runs out: every reply cites the first passage."""

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        self.replies = ["The volcano spat lava over the ice [1]."]
        return super().stream(messages, max_tokens=max_tokens, temperature=temperature)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "docs").mkdir()
    (root / "docs" / "volcano.md").write_text("# Volcano\n\nThe volcano spat lava over the ice.\n")
    (root / "docs" / "bread.txt").write_text("Bread rises because yeast ferments the dough.\n")
    assistant = Assistant(
        Settings(index_dir=root / "index", upload_dir=root / "uploads", max_upload_mb=1),
        embedder=BagOfWordsEmbedder(),
        generator=EndlessGenerator(),
    )
    assistant.ingest([root / "docs"])
    with TestClient(create_app(assistant), raise_server_exceptions=False) as test_client:
        yield test_client


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every operation in the app's OpenAPI document."""
    spec = client.app.openapi()
    return [
        (method.upper(), path, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        ["", " ", "\x00", "volcano", "user", "assistant", "system", "a" * 5000, "../../etc/passwd"]
    )
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
)


def typed(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy:
    """Values of the schema's type (bounds ignored, so out-of-range values come too), or any JSON."""
    schema = resolve(schema, components)
    if depth > 4:
        return ANY_JSON
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return st.one_of([typed(option, components, depth + 1) for option in options])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | ANY_JSON
    if "const" in schema:
        return st.just(schema["const"]) | ANY_JSON
    kind = schema.get("type")
    if kind == "object":
        return shaped(schema, components, depth + 1)
    if kind == "array":
        return st.lists(typed(schema.get("items", {}), components, depth + 1), max_size=5)
    if kind == "string":
        return st.text(max_size=60) | st.text(string.printable, min_size=1000, max_size=3000)
    if kind == "integer":
        return st.integers(min_value=-(2**40), max_value=2**40)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    return ANY_JSON


WORDS = st.lists(
    st.sampled_from(["volcano", "lava", "bread", "yeast", "ice", "why", "what", "the"]), min_size=1
)


def conforming(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy:
    """Values the schema accepts (mostly): bounds, lengths and enums honoured, required fields present."""
    schema = resolve(schema, components)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return st.one_of([conforming(option, components, depth + 1) for option in options])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object" and depth < 5:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {n: conforming(f, components, depth + 1) for n, f in properties.items() if n in required},
            optional={
                n: conforming(f, components, depth + 1) for n, f in properties.items() if n not in required
            },
        )
    if kind == "array" and depth < 5:
        return st.lists(
            conforming(schema.get("items", {}), components, depth + 1),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
        )
    if kind == "string":
        text = WORDS.map(" ".join)
        return text.filter(lambda t: schema.get("minLength", 0) <= len(t) <= schema.get("maxLength", 10**6))
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -11) + 1)
        return st.integers(low, schema.get("maximum", schema.get("exclusiveMaximum", low + 21) - 1))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1.0))
        return st.floats(
            low,
            schema.get("maximum", schema.get("exclusiveMaximum", low + 10)),
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return SCALARS


def shaped(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy:
    """Objects with some of the schema's fields (typed or any JSON) and sometimes an unknown one."""
    schema = resolve(schema, components)
    fields = {
        name: typed(field, components, depth) | ANY_JSON
        for name, field in schema.get("properties", {}).items()
    }
    if not fields:
        return st.dictionaries(st.text(max_size=12), ANY_JSON, max_size=4)
    return st.fixed_dictionaries({}, optional=fields) | st.fixed_dictionaries(
        {}, optional={**fields, "unexpected": ANY_JSON}
    )


STATUSES: Counter[int] = Counter()
"""Status codes the fuzz got back, to check that it reaches the handlers (not only validation)."""


def assert_handled(response, what: str) -> None:  # noqa: ANN001
    """Not a server error; an error is the one documented shape."""
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, f"{what}: {body}"
        assert set(body["error"]) == {"type", "message"}, f"{what}: {body}"
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], what


PATH_VALUES = st.text(max_size=30) | st.sampled_from(["volcano.md", "..", "%00", "a/b", "x" * 300])


def fill(path: str, values: st.DataObject) -> str:
    """The path with each `{parameter}` replaced by a random value, URL-quoted."""
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        value = values.draw(PATH_VALUES) or "x"
        path = path[:start] + quote(value, safe="") + path[end + 1 :]
    return path


def query_values(operation: dict[str, Any], values: st.DataObject) -> dict[str, str]:
    names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
    chosen = values.draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    return {
        name: values.draw(st.text(max_size=20) | st.sampled_from(["-1", "1e309", "true", "0"]))
        for name in chosen
    }


def test_the_app_has_the_operations_the_fuzz_covers(client: TestClient) -> None:
    found = {(method, path) for method, path, _ in operations(client)}
    assert {("POST", "/api/answer"), ("POST", "/api/search"), ("POST", "/v1/chat/completions")} <= found
    assert ("POST", "/api/documents") in found


def json_operations(client: TestClient) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(method, path, operation, body schema) of every operation that takes a JSON body."""
    found = []
    for method, path, operation in operations(client):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            found.append((method, path, operation, content["application/json"].get("schema", {})))
    return found


def json_sender(
    client: TestClient, method: str, template: str, operation: dict, schema: dict, components: dict
) -> Callable[[], None]:
    @FUZZ
    @given(values=st.data())
    def send(values: st.DataObject) -> None:
        body = values.draw(conforming(schema, components) | shaped(schema, components) | ANY_JSON)
        path = fill(template, values)
        response = client.request(
            method,
            path,
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
            params=query_values(operation, values),
        )
        assert_handled(response, f"{method} {path} {json.dumps(body)[:200]}")

    return send


def test_random_json_for_each_request_schema(client: TestClient) -> None:
    components = client.app.openapi().get("components", {}).get("schemas", {})
    targets = json_operations(client)
    assert len(targets) >= 4
    STATUSES.clear()
    for method, template, operation, schema in targets:
        json_sender(client, method, template, operation, schema, components)()
    assert STATUSES[200] > 0 and STATUSES[422] > 0, STATUSES  # handlers ran, and validation refused


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
    "\x7f/\x00",
]
ODD_BODIES = [b"{", b"[]", b"null", b'{"question": "\xff\xfe"}', b"\xef\xbb\xbf{}", b"--xyz--"]


def bytes_sender(client: TestClient, method: str, template: str) -> Callable[[], None]:
    @settings(FUZZ, max_examples=BYTES_EXAMPLES)
    @given(values=st.data())
    def send(values: st.DataObject) -> None:
        body = values.draw(st.binary(max_size=300) | st.sampled_from(ODD_BODIES))
        kind = values.draw(st.sampled_from(CONTENT_TYPES))
        headers = {"Content-Type": kind} if kind else {}
        path = fill(template, values)
        try:
            response = client.request(method, path, content=body, headers=headers)
        except UnicodeEncodeError:  # a header httpx itself cannot send: nothing reached the app
            return
        assert_handled(response, f"{method} {path} {kind!r} {body[:80]!r}")

    return send


def test_random_bytes_under_any_content_type(client: TestClient) -> None:
    for method, template, _ in operations(client):
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            bytes_sender(client, method, template)()


def read_sender(client: TestClient, method: str, template: str, operation: dict) -> Callable[[], None]:
    @settings(FUZZ, max_examples=BYTES_EXAMPLES)
    @given(values=st.data())
    def send(values: st.DataObject) -> None:
        path = fill(template, values)
        response = client.request(method, path, params=query_values(operation, values))
        if response.headers.get("content-type", "").startswith("application/json"):
            assert_handled(response, f"{method} {path}")
        else:
            assert response.status_code < 500, f"{method} {path}: {response.status_code}"

    return send


def test_random_paths_and_queries_on_reads(client: TestClient) -> None:
    for method, template, operation in operations(client):
        if method == "GET":
            read_sender(client, method, template, operation)()


def test_random_multipart_uploads(client: TestClient, tmp_path: Path) -> None:
    @FUZZ
    @given(
        names=st.lists(
            st.text(max_size=40) | st.sampled_from(["a.md", "../x.txt", "a\x00.txt", ".", "é.pdf"]),
            max_size=3,
        ),
        contents=st.lists(st.binary(max_size=200), min_size=3, max_size=3),
        field=st.sampled_from(["files", "file", "", "files[]"]),
    )
    def send(names: list[str], contents: list[bytes], field: str) -> None:
        files = [(field, (name, content)) for name, content in zip(names, contents, strict=False)]
        try:
            response = client.post(
                "/api/documents", files=files or None, data={"x": "1"} if not files else None
            )
        except UnicodeEncodeError:
            return
        assert_handled(response, f"upload {names!r} as {field!r}")

    send()
