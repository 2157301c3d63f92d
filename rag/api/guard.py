"""API keys and request-size limits, checked before a body is read."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rag.config import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OPEN_PATHS = {"/api/health"}


def is_write(method: str, path: str) -> bool:
    """Requests that change the index: uploads and removals of documents."""
    return method in _WRITE_METHODS and path.startswith("/api/documents")


def _presented_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1").strip() if key is not None else None


class RequestGuard:
    """Pure ASGI middleware: API keys on writes (or on every API call), and a cap on upload bodies."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = [key.encode() for key in settings.api_keys]
        self.all_endpoints = settings.api_keys_for_reads
        self.max_body = int(settings.max_upload_mb * settings.max_upload_files * 2**20) + 2**20

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        key = _presented_key(headers)
        if key is None:
            return False
        found = False
        for known in self.keys:
            found |= hmac.compare_digest(known, key.encode())
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = dict(scope["headers"])
        api = path.startswith(("/api/", "/v1/")) and path not in _OPEN_PATHS
        protected = api and (is_write(method, path) or self.all_endpoints)
        if self.keys and protected and method != "OPTIONS" and not self._authorized(headers):
            await _reply(
                send,
                401,
                "Unauthorized",
                "This endpoint needs an API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        length = headers.get(b"content-length")
        if path.startswith("/api/documents") and length and length.isdigit() and int(length) > self.max_body:
            await _reply(
                send,
                413,
                "PayloadTooLarge",
                f"The request body is larger than {self.max_body / 2**20:.0f} MiB "
                "(settings max_upload_mb and max_upload_files).",
                [],
            )
            return
        await self.app(scope, receive, send)


async def _reply(send: Send, status: int, kind: str, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
