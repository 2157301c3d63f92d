"""The HTTP layer: a FastAPI app over one Assistant (JSON API and the chat page)."""

from rag.api.app import create_app

__all__ = ["create_app"]
