"""Routes that answer and search: `/api/answer`, `/api/answer/stream`, `/api/search`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from rag.api.conversations import conversation_history, record_answer, recorded_stream
from rag.api.schemas import AnswerRequest, AnswerResponse, SearchRequest, SearchResponse, passage_dict
from rag.api.service import ApiService, question_options
from rag.conversations import ConversationStore


def answers_router(service: ApiService, conversations: ConversationStore) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["answers"])

    @router.post("/answer", response_model=AnswerResponse)
    async def answer(body: AnswerRequest) -> dict[str, Any]:
        """Answer from the documents, with citations (the JSON of `rag ask --json`, plus passages)."""
        history = await conversation_history(conversations, body.conversation_id, body.history)
        payload = await service.answer(body.question, body.k, history, question_options(body))
        await record_answer(conversations, body.conversation_id, body.question, payload)
        return payload

    @router.post(
        "/answer/stream",
        responses={
            200: {
                "description": 'Server-Sent Events: `status` events as each step begins ({"step": "queued", '
                '"ahead": n}, then "rewriting", "searching", {"step": "reading", "passages": n}, "writing", '
                '"checking"), `token` events ({"text"}), then one `answer` event with the whole answer '
                'object, or an `error` event ({"error": {"type", "message"}}). Closing the connection stops '
                "the answer and frees the model.",
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def answer_stream(body: AnswerRequest) -> EventSourceResponse:
        """Answer as a stream of Server-Sent Events."""
        history = await conversation_history(conversations, body.conversation_id, body.history)
        events = service.start_stream(body.question, body.k, history, question_options(body), statuses=True)
        events = recorded_stream(events, conversations, body.conversation_id, body.question)
        return EventSourceResponse(_as_sse(events), ping=15)

    @router.post("/search", response_model=SearchResponse)
    async def search(body: SearchRequest) -> dict[str, Any]:
        """The passages most relevant to a question, without the language model."""
        passages = await service.search(body.question, body.k, question_options(body))
        return {"passages": [passage_dict(p) for p in passages]}

    return router


async def _as_sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, str]]:
    async for event in events:
        kind = event.pop("type")
        data = event["answer"] if kind == "answer" else event
        yield {"event": kind, "data": json.dumps(data, ensure_ascii=False)}
