"""Routes that answer and search: `/api/answer`, `/api/answer/stream`, `/api/search`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse

from rag.api.schemas import AnswerRequest, AnswerResponse, SearchRequest, SearchResponse, passage_dict
from rag.api.service import ApiService


def answers_router(service: ApiService) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["answers"])

    @router.post("/answer", response_model=AnswerResponse)
    async def answer(body: AnswerRequest) -> dict[str, Any]:
        """Answer from the documents, with citations (the JSON of `rag ask --json`, plus passages)."""
        return await service.answer(body.question, body.k, body.history)

    @router.post(
        "/answer/stream",
        responses={
            200: {
                "description": 'Server-Sent Events: `token` events ({"text"}), then one `answer` event with '
                'the whole answer object, or an `error` event ({"error": {"type", "message"}}).',
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def answer_stream(body: AnswerRequest) -> EventSourceResponse:
        """Answer as a stream of Server-Sent Events."""
        events = service.start_stream(body.question, body.k, body.history)
        return EventSourceResponse(_as_sse(events), ping=15)

    @router.post("/search", response_model=SearchResponse)
    async def search(body: SearchRequest) -> dict[str, Any]:
        """The passages most relevant to a query, without the language model."""
        passages = await run_in_threadpool(service.assistant.retrieve, body.query, body.k)
        return {"passages": [passage_dict(p) for p in passages]}

    return router


async def _as_sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, str]]:
    async for event in events:
        kind = event.pop("type")
        data = event["answer"] if kind == "answer" else event
        yield {"event": kind, "data": json.dumps(data, ensure_ascii=False)}
