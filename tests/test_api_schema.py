"""Property-based tests of every API operation against its OpenAPI schema (schemathesis): never a 5xx.

Bounded: a few examples per operation; extractive answers and a closed evidence gate keep the language
model out (also for follow-up rewriting), so every example is fast while running the real answer path.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings

pytestmark = pytest.mark.slow


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


def test_no_operation_answers_a_server_error(app) -> None:  # noqa: ANN001
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # noqa: ANN001
            case.call_and_validate(checks=[not_a_server_error])

        check()
