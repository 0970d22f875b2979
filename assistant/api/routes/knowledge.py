"""/api/v1/knowledge (admin): upload documents, rebuild the index in the background with
progress, index status, rollback."""

from __future__ import annotations

from typing import Any

from fastapi import File, Path as PathParam, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from assistant.api.app import api_router, get_services
from assistant.api.auth import AdminPrincipal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.routes.schemas import DocumentOut, JobOut, RollbackData

router = api_router(prefix="/api/v1/knowledge", tags=["knowledge"], responses=error_responses(401, 403))


@router.get("/documents", response_model=Envelope[list[DocumentOut]], summary="Uploaded documents")
def documents(request: Request, principal: AdminPrincipal) -> Any:
    return ok(get_services(request).knowledge.list_documents())


@router.post("/documents", response_model=Envelope[DocumentOut], status_code=201,
             responses=error_responses(400, 413, 415, 422),
             summary="Upload a document (PDF, Markdown, text, HTML, DOCX) for the next rebuild")
async def upload_document(request: Request, principal: AdminPrincipal,
                          file: UploadFile = File(description="The document; a file of the same name is replaced.")) -> Any:
    data = await file.read()
    # Who added it and when is kept with the document: sources and answers can say so.
    return ok(await run_in_threadpool(get_services(request).knowledge.save_document, file.filename or "", data,
                                      principal.id))


@router.delete("/documents/{name}", response_model=Envelope[dict[str, Any]], responses=error_responses(404, 422),
               summary="Remove an uploaded document (it leaves the index at the next rebuild)")
def delete_document(request: Request, principal: AdminPrincipal,
                    name: str = PathParam(min_length=1, max_length=200)) -> Any:
    return ok(get_services(request).knowledge.delete_document(name))


@router.post("/jobs", response_model=Envelope[JobOut], status_code=202, responses=error_responses(409),
             summary="Start a rebuild of the index in the background")
def start_rebuild(request: Request, principal: AdminPrincipal) -> Any:
    """Indexes the live index's sources (the bundled samples when it was built from them) and the
    uploaded documents; the assistant keeps answering from the live version meanwhile. One at a
    time: 409 while another rebuild runs. Follow it with GET /api/v1/knowledge/jobs/{id}."""
    return ok(get_services(request).knowledge.start_rebuild())


@router.get("/jobs", response_model=Envelope[list[JobOut]], summary="Rebuild jobs since the server started")
def jobs(request: Request, principal: AdminPrincipal) -> Any:
    return ok(get_services(request).knowledge.list_jobs())


@router.get("/jobs/{job_id}", response_model=Envelope[JobOut], responses=error_responses(404, 422),
            summary="A rebuild's progress: stage, files done / total, failures with reasons")
def job(request: Request, principal: AdminPrincipal,
        job_id: str = PathParam(pattern=r"^job-[0-9a-f]{12}$")) -> Any:
    return ok(get_services(request).knowledge.get_job(job_id))


@router.get("/status", response_model=Envelope[dict[str, Any]],
            summary="Index versions, documents (with who added them), chunks, failed files, flagged passages, "
                    "statements that contradict the site's safety rules")
async def status(request: Request, principal: AdminPrincipal) -> Any:
    return ok(await run_in_threadpool(get_services(request).knowledge.index_status))


@router.post("/rollback", response_model=Envelope[RollbackData], responses=error_responses(409),
             summary="Make the previous sound index version live again")
async def rollback(request: Request, principal: AdminPrincipal) -> Any:
    return ok(await run_in_threadpool(get_services(request).knowledge.rollback_index))
