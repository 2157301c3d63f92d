"""The original file of a cited document (`/api/documents/{id}/file`): the PDF the chat's viewer renders,
and the download link.

Path safety: the request names a document id, which is only a key of the catalog; the file served is the
one the catalog recorded at ingest, never a path built from the request. It is sent as an attachment with
`nosniff` and a sandboxing CSP, so an HTML document never runs as a page of this site.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from rag.api.service import ApiService
from rag.catalog import Catalog
from rag.errors import DocumentNotFoundError


def sources_router(service: ApiService) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["documents"])

    @router.get(
        "/documents/{doc_id:path}/file",
        response_class=FileResponse,
        responses={200: {"description": "The file, as an attachment.", "content": {"*/*": {}}}},
    )
    async def original_file(
        doc_id: str,
        collection: str | None = Query(None, max_length=64, description="Collection (default: the default)."),
    ) -> FileResponse:
        """The original file a document was read from (all the documents of a JSONL file share it)."""
        assistant = service.collections.get(collection)
        path = await run_in_threadpool(_source_file, assistant.index().catalog, doc_id)
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media != "application/pdf":
            media = "application/octet-stream"  # never rendered by the browser as a page of this site
        return FileResponse(
            path,
            media_type=media,
            filename=path.name,
            content_disposition_type="attachment",
            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
        )

    return router


def _source_file(catalog: Catalog, doc_id: str) -> Path:
    """The file the catalog recorded for `doc_id`, or DocumentNotFoundError saying why it cannot be sent."""
    owner = catalog.document_owner(doc_id)
    if owner is None:
        raise DocumentNotFoundError(f"No document {doc_id!r} in the index.")
    path = Path(owner)
    if not path.is_file():
        raise DocumentNotFoundError(
            f"The file of {doc_id!r} ({path}) is no longer there: moved or deleted after it was indexed."
        )
    return path
