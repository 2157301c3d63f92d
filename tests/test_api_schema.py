"""The API's schema tells the truth: answers validate against their models (fast), and property-based tests
of every operation against the OpenAPI schema (schemathesis, slow): no 5xx, and every response conforms
to its documented schema and content type.

The schemathesis run is bounded: a few examples per operation; extractive answers and a closed evidence
gate keep the language model out (also for follow-up rewriting), so every example is fast while running
the real answer path.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from rag.api import create_app
from rag.api.schemas import AnswerResponse, ChatCompletionResponse, answer_payload
from rag.assistant import Assistant
from rag.config import Settings
from rag.types import Answer, AnswerSentence, Chunk, Citation, Passage


def an_answer() -> Answer:
    chunk = Chunk(doc_id="volcano.md", text="Mount Erebus is in Antarctica.", start=0, end=30, page=2, id=7)
    passage = Passage(chunk, 0.0312, "docs/volcano.md", "Volcanoes", dense_score=0.71)
    citation = Citation(1, "volcano.md", "Volcanoes", 2, 0, 30, chunk.text, 0.71)
    sentence = AnswerSentence(
        "Erebus is in Antarctica [1].", (1,), attributed=True, supported=True, support=0.9
    )
    return Answer(
        "Erebus is in Antarctica [1].",
        abstained=False,
        citations=[citation],
        timings={"total_seconds": 0.5, "prompt_tokens": 120.0},
        passages=[passage],
        sentences=[sentence],
        refusal_probability=0.02,
    )


def test_an_answer_payload_is_exactly_what_its_model_says() -> None:
    payload = answer_payload(an_answer())
    assert AnswerResponse.model_validate(payload).model_dump() == payload
    assert payload["sentences"][0]["attributed"] is True
    assert payload["citations"][0]["score"] == 0.71  # the cosine similarity, not the fused ranking score
    assert payload["passages"][0]["score"] == 0.71  # one meaning per score field: the same quantity
    assert payload["passages"][0]["rank_score"] == 0.0312
    abstained = answer_payload(Answer("The documents do not say.", abstained=True))
    assert AnswerResponse.model_validate(abstained).model_dump() == abstained


def test_a_field_the_schema_lacks_fails_validation() -> None:
    payload = answer_payload(an_answer())
    payload["sentences"][0]["undocumented"] = 1
    with pytest.raises(ValueError, match="undocumented"):
        AnswerResponse.model_validate(payload)


def test_the_schema_describes_what_citation_scores_are() -> None:
    schemas = ChatCompletionResponse.model_json_schema()["$defs"]
    assert "attributed" in schemas["SentenceModel"]["required"]
    assert "cosine similarity" in schemas["CitationModel"]["properties"]["score"]["description"].lower()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedder):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("schema")
    (root / "docs").mkdir()
    (root / "docs" / "volcano.md").write_text(
        "# Volcanoes\n\nMount Erebus is an active volcano in Antarctica.\n"
    )
    assistant = Assistant(
        Settings(
            index_dir=root / "index", upload_dir=root / "uploads", min_relevance=1.0, answer_mode="extractive"
        ),
        embedder=embedder,
    )
    assistant.ingest([root / "docs"])
    return create_app(assistant)


@pytest.mark.slow
def test_every_operation_answers_as_its_schema_says(app) -> None:  # noqa: ANN001
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    checks = [
        not_a_server_error,
        response_schema_conformance,
        content_type_conformance,
        status_code_conformance,
    ]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # noqa: ANN001
            case.call_and_validate(checks=checks)

        check()
