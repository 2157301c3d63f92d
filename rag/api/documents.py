"""Routes over the collections and their documents: list, upload (background ingest jobs, kept and
removable), remove, and text around a span."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from rag.api.jobs import FileStatus
from rag.api.schemas import (
    CollectionModel,
    DocumentContext,
    DocumentModel,
    JobModel,
    JobRemovedResponse,
    RemovedResponse,
)
from rag.api.service import ApiService
from rag.api.uploads import UploadRejected, delete_upload, save_upload
from rag.errors import InvalidInputError

CollectionQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Collection, as `GET /api/collections` lists them (default: the default one).",
    ),
]


def documents_router(service: ApiService) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["documents"])

    @router.get("/collections", response_model=list[CollectionModel])
    async def collections() -> list[dict[str, Any]]:
        """The collections this server answers from: the default one first, then the others by name."""
        return [asdict(c) for c in await run_in_threadpool(service.collections.summaries)]

    @router.get("/documents", response_model=list[DocumentModel])
    async def list_documents(collection: CollectionQuery = None) -> list[dict[str, Any]]:
        """Every indexed document of the collection."""
        assistant = service.collections.get(collection)
        return [d.__dict__ for d in await run_in_threadpool(assistant.documents)]

    @router.post("/documents", status_code=202, response_model=JobModel)
    async def upload(
        files: Annotated[list[UploadFile], File(description="Files to add to the index.")],
        collection: CollectionQuery = None,
    ) -> dict[str, Any]:
        """Save files into the upload folder and index them in the background; poll `/api/jobs/{id}`.

        Each file is saved in a folder named by its content, so files of the same name never replace
        each other. The job is recorded before this answers: it survives a restart of the server, which
        resumes it. A `collection` that does not exist yet is started (its upload folder is
        `<upload_dir>/<collection>`).
        """
        jobs = service.jobs_for(collection, create=True)
        settings = service.collections.get(collection).settings
        if len(files) > settings.max_upload_files:
            raise InvalidInputError(
                f"{len(files)} files in one request; the limit is {settings.max_upload_files} "
                "(setting max_upload_files)."
            )
        max_bytes = int(settings.max_upload_mb * 2**20)
        statuses: list[FileStatus] = []
        for upload_file in files:
            name = upload_file.filename or "upload"
            try:
                path = await run_in_threadpool(
                    save_upload, upload_file.file, name, settings.upload_dir, max_bytes
                )
            except UploadRejected as exc:
                statuses.append(FileStatus(name=name, status="rejected", error=str(exc)))
            else:
                statuses.append(FileStatus(name=name, status="saved", path=str(path)))
        return (await run_in_threadpool(jobs.submit, statuses)).to_dict()

    @router.get("/jobs", response_model=list[JobModel])
    async def list_jobs(
        failed: bool = Query(False, description="Only the jobs with a file that failed to be indexed."),
        collection: CollectionQuery = None,
    ) -> list[dict[str, Any]]:
        """Ingest jobs of the collection, newest first: the recent ones, and every one with a failed file
        until removed."""
        jobs = service.jobs_for(collection)
        return [job.to_dict() for job in await run_in_threadpool(jobs.jobs, failed_only=failed)]

    @router.get("/jobs/{job_id}", response_model=JobModel)
    async def job(job_id: str, collection: CollectionQuery = None) -> dict[str, Any]:
        """Progress of an ingest job and the outcome of each of its files."""
        return (await run_in_threadpool(service.jobs_for(collection).get, job_id)).to_dict()

    @router.delete("/jobs/{job_id}", response_model=JobRemovedResponse)
    async def remove_job(job_id: str, collection: CollectionQuery = None) -> dict[str, Any]:
        """Forget a finished job and delete its files that failed from the upload folder.

        Its indexed files stay in the index (remove them with `DELETE /api/documents/{id}`).
        """
        deleted = await run_in_threadpool(service.jobs_for(collection).remove, job_id)
        return {"id": job_id, "deleted": deleted}

    @router.get("/documents/{doc_id:path}/context", response_model=DocumentContext)
    async def context(
        doc_id: str,
        start: int = Query(..., ge=0, description="Start of the span (character offset)."),
        end: int = Query(..., ge=0, description="End of the span."),
        window: int = Query(400, ge=0, le=5000, description="Characters of context on each side."),
        collection: CollectionQuery = None,
    ) -> dict[str, Any]:
        """A document's text around a character span, to show a cited passage in place."""
        document = await run_in_threadpool(service.collections.get(collection).document, doc_id)
        length = len(document.text)
        if start > end or end > length:
            raise InvalidInputError(f"Span {start}-{end} is not within the document's {length} characters.")
        lo, hi = max(0, start - window), min(length, end + window)
        return {
            "document": document.id,
            "title": document.title,
            "page": document.page_at(start),
            "start": start,
            "end": end,
            "before": document.text[lo:start],
            "passage": document.text[start:end],
            "after": document.text[end:hi],
            "context_start": lo,
            "context_end": hi,
            "length": length,
        }

    @router.delete("/documents/{doc_id:path}", response_model=RemovedResponse)
    async def remove(doc_id: str, collection: CollectionQuery = None) -> dict[str, Any]:
        """Remove a document (with every document from the same file) from the collection's index.

        A file that was uploaded through the API is deleted from the upload folder too.
        """
        if "\x00" in doc_id:  # no id or path holds one (the file-path lookup would fail on it)
            raise InvalidInputError("A document id cannot contain a NUL character.")
        assistant = service.collections.get(collection)
        removed = await service.jobs_for(collection).write(assistant.remove_documents, [doc_id])
        for shown in removed:
            delete_upload(Path(shown), assistant.settings.upload_dir)
        return {"removed": removed}

    return router
