"""FastAPI app factory: thin routes over the Assistant, one JSON error shape, jinja2 pages from `web/`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from rag import __version__
from rag.assistant import Assistant
from rag.errors import RagError


def web_dir() -> Path:
    """The folder of templates and static files (`web/` in the source tree, `rag/web` when installed)."""
    return Path(str(files("rag.web")))


class AnswerRequest(BaseModel):
    """A question to answer from the index."""

    question: str = Field(..., min_length=1, max_length=4000, description="The question.")
    k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: setting top_k).")


class CitationModel(BaseModel):
    n: int = Field(description="The number the answer cites, as in [n].")
    document: str = Field(description="Source path of the document, or its corpus id.")
    title: str
    page: int | None = Field(description="Page of the passage (PDF), or null.")
    start: int = Field(description="Character offset where the passage starts in the document text.")
    end: int = Field(description="Character offset where the passage ends.")
    quote: str = Field(description="The cited passage.")
    score: float = Field(description="Retrieval score (cosine similarity).")


class AnswerResponse(BaseModel):
    answer: str
    abstained: bool = Field(description="True when the documents do not hold the answer.")
    citations: list[CitationModel]
    timings: dict[str, float]


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def create_app(assistant: Assistant) -> FastAPI:
    """The app serving `assistant`: `/api/answer`, `/api/health`, and the chat page at `/`."""
    app = FastAPI(title="rag", version=__version__, description="Answers from your documents, with citations.")
    root = web_dir()
    templates = Jinja2Templates(directory=str(root / "templates"))
    app.mount("/static", StaticFiles(directory=str(root / "static")), name="static")

    @app.exception_handler(RagError)
    async def rag_error(_request: Request, exc: RagError) -> JSONResponse:
        return _error(exc.status_code, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error(422, "InvalidRequest", problems)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "chat.html", {"version": __version__})

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return assistant.health()

    @app.post("/api/answer", response_model=AnswerResponse)
    async def answer(body: AnswerRequest) -> dict[str, Any]:
        result = await run_in_threadpool(assistant.ask, body.question, body.k)
        return result.to_dict()

    return app
