"""`POST /v1/chat/completions` in OpenAI's shape, so existing clients work; citations ride in extra fields."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from rag.api.schemas import ChatCompletionRequest, ChatCompletionResponse, Turn
from rag.api.service import ApiService
from rag.errors import InvalidInputError


def _conversation(body: ChatCompletionRequest) -> tuple[str, list[Turn]]:
    """The last user message is the question; earlier user and assistant messages are the history."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise InvalidInputError("The last message must be a non-empty message with role 'user'.")
    history = [Turn(role=m.role, content=m.text()) for m in turns[:-1]]  # type: ignore[arg-type]
    return turns[-1].text()[:4000], history[-50:]


def _extras(payload: dict[str, Any]) -> dict[str, Any]:
    """What OpenAI's shape has no place for: citations, abstention, sentence support, passages."""
    return {"citations": payload["citations"], "rag": payload}


def openai_router(service: ApiService) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai"])
    model_name = service.assistant.settings.generator

    @router.post(
        "/chat/completions",
        response_model=ChatCompletionResponse,
        responses={
            200: {
                "description": "The completion; with `stream: true`, Server-Sent Events of "
                "`chat.completion.chunk` objects, the last with the citations, then `[DONE]`.",
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        """OpenAI-compatible chat completion (also `stream: true`); the answer comes from the documents."""
        question, history = _conversation(body)
        ident, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body.model or model_name
        if body.stream:
            events = service.start_stream(question, None, history)
            return EventSourceResponse(_chunks(events, ident, created, model), ping=15)
        payload = await service.answer(question, None, history)
        timings = payload["timings"]
        prompt, completion = int(timings.get("prompt_tokens", 0)), int(timings.get("completion_tokens", 0))
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": payload["answer"]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            **_extras(payload),
        }

    return router


async def _chunks(
    events: AsyncIterator[dict[str, Any]], ident: str, created: int, model: str
) -> AsyncIterator[dict[str, str]]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, str]:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return {"data": json.dumps(body, ensure_ascii=False)}

    yield chunk({"role": "assistant", "content": ""})
    streamed = False
    async for event in events:
        if event["type"] == "token":
            streamed = True
            yield chunk({"content": event["text"]})
        elif event["type"] == "answer":
            payload = event["answer"]
            if not streamed:
                yield chunk({"content": payload["answer"]})
            yield chunk({}, "stop", **_extras(payload))
        else:
            yield {"data": json.dumps({"error": event["error"]})}
    yield {"data": "[DONE]"}
