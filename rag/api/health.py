"""`GET /api/health`: model and index status, the answer queue, and whether API keys are required."""

from __future__ import annotations

from typing import Any

from rag.api.queue import AnswerQueue
from rag.assistant import Assistant
from rag.errors import IndexMissingError


def health_status(assistant: Assistant, queue: AnswerQueue) -> dict[str, Any]:
    """What the server runs and serves: `status` is "ok", or "no_index" with a `detail` saying what to do."""
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
    status["queue"] = queue.status()
    status["api_keys_required"] = bool(settings.api_keys)
    return status
