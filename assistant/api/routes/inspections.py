"""/api/v1/uploads (photos) and /api/v1/inspections (a photo checked for defects)."""

from __future__ import annotations

from typing import Any

from fastapi import File, Form, Path as PathParam, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from assistant.api.app import api_router, get_services
from assistant.api.auth import CurrentPrincipal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.routes.schemas import UPLOAD_ID, InspectionData, UploadData

router = api_router(tags=["inspections"], responses=error_responses(401))
_MEDIA = {".png": "image/png", ".jpg": "image/jpeg"}
UPLOAD_ERRORS = error_responses(400, 413, 422, 429)  # 429: the photo decoders stay busy


@router.post("/uploads", response_model=Envelope[UploadData], status_code=201, responses=UPLOAD_ERRORS,
             summary="Upload a photo (PNG or JPEG) to ask about or inspect")
async def upload(request: Request, principal: CurrentPrincipal,
                 file: UploadFile = File(description="The photo: PNG or JPEG, at most 40 MP.")) -> Any:
    data = await file.read()  # at most the body limit: the middleware caps the request
    return ok(await run_in_threadpool(get_services(request).inspection.save_photo, data, file.filename or ""))


@router.get("/uploads/{image_id}", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "The image."},
                       **error_responses(404, 422)},
            summary="A stored photo or annotated inspection image")
def uploaded(request: Request, principal: CurrentPrincipal,
             image_id: str = PathParam(pattern=UPLOAD_ID, description="An upload id.")) -> FileResponse:
    path = get_services(request).inspection.photo_path(image_id)
    return FileResponse(path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"),
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"},
                        content_disposition_type="inline")


@router.post("/inspections", response_model=Envelope[InspectionData], responses={**UPLOAD_ERRORS,
             **error_responses(429)}, summary="Inspect a photo of a product for defects")
async def inspect(
    request: Request,
    principal: CurrentPrincipal,
    file: UploadFile = File(description="The photo: PNG or JPEG, at most 40 MP."),
    product: str | None = Form(None, max_length=80, pattern=r"^(detector:)?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                               description="Product to compare with (a fitted product or detector:<name>); "
                               "may be omitted when the site has one."),
) -> Any:
    """The verdict (good / defective), score and threshold, defect boxes, and the id of an annotated
    copy (GET /api/v1/uploads/{annotated_image_id})."""
    data = await file.read()  # at most the body limit: the middleware caps the request
    return ok(await run_in_threadpool(get_services(request).inspection.inspect_upload, data, file.filename or "", product))


@router.get("/inspections/products", response_model=Envelope[list[str]], summary="Products photos can be checked against")
def products(request: Request, principal: CurrentPrincipal) -> Any:
    return ok(get_services(request).inspection.list_products())
