"""FastAPI app factory: thin routes over the Assistant, one JSON error shape, jinja2 pages from `web/`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import __version__
from rag.api.answers import answers_router
from rag.api.conversations import conversations_router
from rag.api.documents import documents_router
from rag.api.guard import RequestGuard
from rag.api.health import health_status
from rag.api.openai_compat import openai_router
from rag.api.queue import ServerBusyError
from rag.api.schemas import ERROR_RESPONSES
from rag.api.service import ApiService
from rag.api.sources import sources_router
from rag.assistant import Assistant
from rag.conversations import ConversationStore
from rag.errors import RagError

log = logging.getLogger("rag.api")

_HTTP_ERROR_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}


def web_dir() -> Path:
    """The folder of templates and static files (`web/` in the source tree, `rag/web` when installed)."""
    return Path(str(files("rag.web")))


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def create_app(assistant: Assistant) -> FastAPI:
    """The app serving `assistant`: the JSON API under `/api` and `/v1`, and the chat pages."""
    settings = assistant.settings
    service = ApiService.build(assistant)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.resume()
        yield
        service.shutdown()

    app = FastAPI(
        title="rag",
        version=__version__,
        description="Answers from your documents, with citations.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    root = web_dir()
    templates = Jinja2Templates(directory=str(root / "templates"))
    app.mount("/static", StaticFiles(directory=str(root / "static")), name="static")
    app.add_middleware(RequestGuard, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

    @app.exception_handler(ServerBusyError)
    async def busy(_request: Request, exc: ServerBusyError) -> JSONResponse:
        return _error(503, "ServerBusy", str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RagError)
    async def rag_error(_request: Request, exc: RagError) -> JSONResponse:
        return _error(exc.status_code, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error(422, "InvalidRequest", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_ERROR_TYPES.get(exc.status_code, "HTTPError")
        return _error(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(sqlite3.DatabaseError)
    async def damaged_database(_request: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        """A damaged SQLite file met after start ("malformed", "not a database"): 503 naming the way to
        find it, not a 500 (locks and other operational errors stay 500s)."""
        if type(exc) is not sqlite3.DatabaseError:
            return await unexpected(_request, exc)
        log.error("damaged database: %s", exc)
        return _error(
            503,
            "IndexCorruptError",
            f"A database file of the index cannot be read ({exc}). `rag check --index "
            f"{assistant.index_dir}` names the damaged file and what to do.",
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _error(500, "InternalError", "Something went wrong on the server; its log has the details.")

    app.mount(
        "/docs/static", StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-static"
    )

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        """Swagger UI from a local copy (the default one loads from a CDN, which offline machines lack)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="rag API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "chat.html", {"version": __version__, "page": "chat"})

    @app.get("/documents", response_class=HTMLResponse, include_in_schema=False)
    def documents_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "documents.html", {"version": __version__, "page": "documents"}
        )

    @app.get("/api/health", tags=["status"])
    def health() -> dict[str, Any]:
        """Model and index status, the answer queue, and whether API keys are required."""
        return health_status(assistant, service.queue)

    conversations = ConversationStore.beside(settings.index_dir)
    for router in (
        answers_router(service, conversations),
        conversations_router(conversations),
        documents_router(service),
        sources_router(service),
        openai_router(service),
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    return app
