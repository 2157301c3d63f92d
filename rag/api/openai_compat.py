"""OpenAI's shape, so existing clients work: `GET /v1/models` lists the collections, `model` picks one,
`POST /v1/chat/completions` answers (streamed too). Citations ride in extra fields and, for clients that
drop those, in `content` as the answer's [n] markers followed by a sources list."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse

from rag.api.schemas import ChatCompletionRequest, ChatCompletionResponse, ModelList, Turn
from rag.api.service import ApiService, QuestionOptions
from rag.errors import InvalidInputError, RagError
from rag.text import cited_numbers


class ModelNotFoundError(RagError):
    """A `model` that names no collection."""

    status_code = 404


def _conversation(body: ChatCompletionRequest) -> tuple[str, list[Turn], str | None]:
    """The last user message is the question; earlier user and assistant messages are the history; system
    and developer messages are instructions."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise InvalidInputError("The last message must be a non-empty message with role 'user'.")
    history = [Turn(role=m.role, content=m.text()) for m in turns[:-1]]  # type: ignore[arg-type]
    system = "\n".join(m.text().strip() for m in body.messages if m.role in ("system", "developer"))
    return turns[-1].text()[:4000], history[-50:], system.strip() or None


def _extras(payload: dict[str, Any]) -> dict[str, Any]:
    """What OpenAI's shape has no place for: citations, abstention, sentence support, passages."""
    return {"citations": payload["citations"], "rag": payload}


def _usage(payload: dict[str, Any]) -> dict[str, int]:
    timings = payload["timings"]
    prompt, completion = int(timings.get("prompt_tokens", 0)), int(timings.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def sources_text(payload: dict[str, Any]) -> str:
    """What `content` gets after the answer: the [n] markers the text lacks (citations the support check
    attributed), then one line per cited source; empty when nothing is cited."""
    citations = payload["citations"]
    if not citations:
        return ""
    written = set(cited_numbers(payload["answer"]))
    missing = [c["n"] for c in citations if c["n"] not in written]
    lines = ["", "", "Sources:"]
    for c in sorted(citations, key=lambda c: c["n"]):
        page = f", page {c['page']}" if c.get("page") is not None else ""
        lines.append(f"[{c['n']}] {c['title']} ({c['document']}{page})")
    markers = (" " + "".join(f"[{n}]" for n in missing)) if missing else ""
    return markers + "\n".join(lines)


def openai_router(service: ApiService) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai"])
    with_sources = service.assistant.settings.openai_sources_in_content

    def collection_of(model: str | None) -> str:
        """The collection `model` names (None: the default one), or an error naming the models."""
        names = service.collections.names()
        if model is None:
            return service.collections.default_name
        if model not in names:
            raise ModelNotFoundError(
                f"The model {model!r} does not exist: the models are this server's collections "
                f"({', '.join(names)}); GET /v1/models lists them."
            )
        return model

    @router.get("/models", response_model=ModelList)
    async def models() -> dict[str, Any]:
        """The collections, as OpenAI's model list: pass one's `id` as `model` to answer from it."""
        summaries = await run_in_threadpool(service.collections.summaries)
        cards = [
            {"id": c.name, "object": "model", "created": int(c.updated or 0), "owned_by": "rag"}
            for c in summaries
        ]
        return {"object": "list", "data": cards}

    @router.post(
        "/chat/completions",
        response_model=ChatCompletionResponse,
        responses={
            200: {
                "description": "The completion; with `stream: true`, Server-Sent Events of "
                "`chat.completion.chunk` objects, the last with the citations (then a usage chunk when "
                "`stream_options.include_usage`), then `[DONE]`.",
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        """OpenAI-compatible chat completion (also `stream: true`); the answer comes from the documents of
        the collection `model` names."""
        question, history, instructions = _conversation(body)
        model = collection_of(body.model)
        options = QuestionOptions(
            collection=model,
            documents=tuple(body.documents) if body.documents is not None else None,
            retrieval_mode=body.retrieval_mode,
            grounding_mode=body.grounding_mode,
            instructions=instructions,
        )
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            events = service.start_stream(question, None, history, options)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = _chunks(events, ident, created, model, with_sources, include_usage)
            return EventSourceResponse(chunks, ping=15)
        payload = await service.answer(question, None, history, options)
        content = payload["answer"] + (sources_text(payload) if with_sources else "")
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": _usage(payload),
            **_extras(payload),
        }

    return router


async def _chunks(
    events: AsyncIterator[dict[str, Any]],
    ident: str,
    created: int,
    model: str,
    with_sources: bool,
    include_usage: bool,
) -> AsyncIterator[dict[str, str]]:
    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, str]:
        body: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        if include_usage:
            body.setdefault("usage", None)
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
            if with_sources and sources_text(payload):
                yield chunk({"content": sources_text(payload)})
            yield chunk({}, "stop", **_extras(payload))
            if include_usage:
                yield chunk(None, usage=_usage(payload))
        elif event["type"] == "error":
            yield {"data": json.dumps({"error": event["error"]})}
    yield {"data": "[DONE]"}
