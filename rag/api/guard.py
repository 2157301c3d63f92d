"""API keys, cross-site request refusal and request-size limits, checked before and while a body is read."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from rag.config import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OPEN_PATHS = {"/api/health"}
_WRITE_PATHS = ("/api/documents", "/api/jobs")


def is_write(method: str, path: str) -> bool:
    """Requests that change the index, the upload folder or saved conversations: uploads, removals,
    forgetting jobs, renaming or deleting a conversation (starting one stays as open as asking)."""
    if path.startswith("/api/conversations"):
        return method in {"PATCH", "DELETE"}
    return method in _WRITE_METHODS and path.startswith(_WRITE_PATHS)


def is_upload(method: str, path: str) -> bool:
    """The one request whose body is files (multipart), not JSON."""
    return method == "POST" and path.rstrip("/") == "/api/documents"


def _presented_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1").strip() if key is not None else None


def is_cross_site(headers: dict[bytes, bytes], allowed_origins: frozenset[str]) -> bool:
    """Whether a browser sent this request from a page of another origin that CORS does not allow.

    Browsers name the page's origin (`Origin`, `Sec-Fetch-Site`) on every state-changing request;
    clients that send neither (curl, scripts, SDKs) are not browsers, so no page can act through them.
    """
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if origin and origin.rstrip("/") in allowed_origins:
        return False
    fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
    if fetch_site:
        return fetch_site not in ("same-origin", "none")
    if not origin:
        return False
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    return origin == "null" or urlsplit(origin.lower()).netloc != host


class BodyTooLarge(HTTPException):
    """A request body grew past its limit while it streamed in (a 413 wherever it is raised)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class RequestGuard:
    """Pure ASGI middleware before every route: API keys on writes (or on every API call), no writes from
    other sites' pages, and caps on request bodies counted as they arrive (chunked bodies too)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = [key.encode() for key in settings.api_keys]
        self.all_endpoints = settings.api_keys_for_reads
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in settings.cors_origins)
        self.max_upload_body = int(settings.max_upload_mb * settings.max_upload_files * 2**20) + 2**20
        self.max_json_body = int(settings.max_json_mb * 2**20)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        key = _presented_key(headers)
        if key is None:
            return False
        found = False
        for known in self.keys:
            found |= hmac.compare_digest(known, key.encode())
        return found

    def _body_limit(self, method: str, path: str) -> tuple[int, str]:
        if is_upload(method, path):
            return self.max_upload_body, "settings max_upload_mb and max_upload_files"
        return self.max_json_body, "setting max_json_mb"

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
        if api and method in _WRITE_METHODS and is_cross_site(headers, self.allowed_origins):
            await _reply(
                send,
                403,
                "CrossSiteRequest",
                "Refused: a page of another site sent this request. Call the API from the chat's own pages "
                "or from a client that is not a browser, or allow that page's origin (setting cors_origins).",
                [],
            )
            return
        limit, setting = self._body_limit(method, path)
        too_large = f"The request body is larger than {limit / 2**20:g} MiB ({setting})."
        length = headers.get(b"content-length")
        if length and length.isdigit() and int(length) > limit:
            await _reply(send, 413, "PayloadTooLarge", too_large, [])
            return
        received = 0
        started = False

        async def limited_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(too_large)
            return message

        async def watched_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _reply(send, 413, "PayloadTooLarge", too_large, [(b"connection", b"close")])


async def _reply(send: Send, status: int, kind: str, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
