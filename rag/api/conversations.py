"""Routes over the stored chat conversations (`/api/conversations`), and the recording of answers asked
within one (`conversation_id` of `/api/answer` and `/api/answer/stream`)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from rag.api.schemas import ConversationModel, ConversationRename, ConversationSummaryModel, Turn
from rag.conversations import ConversationStore


def conversations_router(store: ConversationStore) -> APIRouter:
    router = APIRouter(prefix="/api/conversations", tags=["conversations"])

    @router.get("", response_model=list[ConversationSummaryModel])
    async def list_conversations() -> list[dict[str, Any]]:
        """Every conversation, the most recently updated first."""
        return [c.summary() for c in await run_in_threadpool(store.list)]

    @router.post("", status_code=201, response_model=ConversationModel)
    async def create(body: ConversationRename | None = None) -> dict[str, Any]:
        """Start a conversation (titled with its first question unless a title is given)."""
        conversation = await run_in_threadpool(store.create, *([body.title] if body else []))
        return conversation.to_dict()

    @router.get("/{conversation_id}", response_model=ConversationModel)
    async def get(conversation_id: str) -> dict[str, Any]:
        """A conversation with its messages; an answer keeps its citations, sentences and passages."""
        return (await run_in_threadpool(store.get, conversation_id)).to_dict()

    @router.patch("/{conversation_id}", response_model=ConversationModel)
    async def rename(conversation_id: str, body: ConversationRename) -> dict[str, Any]:
        """Rename a conversation."""
        return (await run_in_threadpool(store.rename, conversation_id, body.title)).to_dict()

    @router.delete("/{conversation_id}", status_code=204)
    async def delete(conversation_id: str) -> Response:
        """Delete a conversation and its messages."""
        await run_in_threadpool(store.delete, conversation_id)
        return Response(status_code=204)

    @router.get(
        "/{conversation_id}/export",
        responses={200: {"content": {"text/markdown": {}, "application/json": {}}}},
    )
    async def export(
        conversation_id: str,
        format: Literal["markdown", "json"] = Query("markdown", description="Markdown or JSON."),  # noqa: A002
    ) -> Response:
        """The conversation as a file to download: Markdown (questions, answers, sources) or JSON."""
        conversation = await run_in_threadpool(store.get, conversation_id)
        stem = re.sub(r"[^\w.-]+", "-", conversation.title).strip("-")[:60] or "conversation"
        if format == "json":
            body = json.dumps(conversation.to_dict(), ensure_ascii=False, indent=2)
            media, suffix = "application/json", "json"
        else:
            body, media, suffix = conversation.to_markdown(), "text/markdown; charset=utf-8", "md"
        disposition = (
            f'attachment; filename="{stem.encode("ascii", "ignore").decode() or "conversation"}.{suffix}"'
        )
        return Response(body, media_type=media, headers={"Content-Disposition": disposition})

    return router


async def conversation_history(
    store: ConversationStore, conversation_id: str | None, history: list[Turn]
) -> list[Turn]:
    """The earlier turns of a question: those sent, else the stored conversation's."""
    if conversation_id is None or history:
        if conversation_id is not None:
            await run_in_threadpool(store.get, conversation_id)  # a 404 before the question is asked
        return history
    conversation = await run_in_threadpool(store.get, conversation_id)
    return [Turn(**turn) for turn in conversation.history()]


async def record_answer(
    store: ConversationStore, conversation_id: str | None, question: str, payload: dict[str, Any]
) -> None:
    """Append a question and its whole answer to the conversation (when there is one)."""
    if conversation_id is not None:
        await run_in_threadpool(
            store.add_exchange, conversation_id, question, payload["answer"], payload, False
        )


async def recorded_stream(
    events: AsyncIterator[dict[str, Any]],
    store: ConversationStore,
    conversation_id: str | None,
    question: str,
) -> AsyncIterator[dict[str, Any]]:
    """Pass the stream's events on; append the question and its answer to the conversation, also when
    the reader stops it (the text written so far, marked stopped)."""
    written: list[str] = []
    finished = False
    try:
        async for event in events:
            if event["type"] == "token":
                written.append(event["text"])
            elif event["type"] == "answer":
                finished = True
                await record_answer(store, conversation_id, question, event["answer"])
            elif event["type"] == "error":
                finished = True
            yield event
    finally:
        if conversation_id is not None and not finished:
            store.add_exchange(conversation_id, question, "".join(written).strip(), None, True)
        await events.aclose()  # type: ignore[attr-defined]  (an async generator: frees the model now)
