"""`GET /api/health`: model and index status, the answer queue, and whether API keys are required."""

from __future__ import annotations

from typing import Any

from rag.api.queue import AnswerQueue
from rag.assistant import Assistant
from rag.errors import IndexCorruptError, IndexMissingError, RagError


def health_status(assistant: Assistant, queue: AnswerQueue) -> dict[str, Any]:
    """What the server runs and serves: `status` is "ok", or "no_index" or
    "index_damaged" with a `detail` saying what to do."""
    settings = assistant.settings
    status: dict[str, Any] = {
        "status": "ok",
        "embedder": settings.embedder,
        "generator": settings.generator,
        "generator_backend": settings.generator_backend,
        "generator_loaded": assistant.generator_loaded,
        "index_dir": str(assistant.index_dir),
    }
    try:
        manifest = assistant.index().manifest
        status["index"] = {
            "documents": manifest.documents,
            "chunks": manifest.chunks,
            "generation": manifest.generation,
            "vector_index": manifest.vector_index,
        }
    except IndexMissingError as exc:
        status["status"] = "no_index"
        status["index"] = None
        status["detail"] = str(exc)
    except IndexCorruptError as exc:
        status["status"] = "index_damaged"
        status["index"] = None
        status["detail"] = str(exc)
    status["generator_limitations"] = generator_limitations(assistant)
    status["queue"] = queue.status()
    status["api_keys_required"] = bool(settings.api_keys)
    return status


def generator_limitations(assistant: Assistant) -> list[str]:
    """What the generator cannot do here (token scores for the refusal probability and the judge, exact
    token counts), in plain words. A model server is asked (cheap, and it may have gone away); an in-process
    model is asked only once loaded (it can do everything)."""
    if assistant.settings.generator_backend != "openai" and not assistant.generator_loaded:
        return []
    try:
        generator = assistant.generator
        check = getattr(generator, "check", None)
        if check is not None:
            check()
    except RagError as exc:
        return [f"generator unavailable: {exc}"]
    return list(getattr(generator, "limitations", []))
