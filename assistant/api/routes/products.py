"""/api/v1/products: teach the inspector a product from photos of good items, list, show, forget.

Fitting is bounded by 3–200 photos and one fit at a time (429 while another runs); a 50-photo
product fits in well under a minute on 2 cores. It runs in the request by default (the answer is
the product); with ``?wait=false`` the photos are checked, the fit runs in the background (202 and
a job) and ``GET /api/v1/products/jobs/{id}`` follows it, as the knowledge rebuild does.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import File, Form, Path as PathParam, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.app import api_router, get_services
from assistant.api.auth import AdminPrincipal, CurrentPrincipal
from assistant.api.envelope import Envelope, error_responses, ok

router = api_router(prefix="/api/v1/products", tags=["inspections"], responses=error_responses(401))
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
PRODUCT = r"^(detector:)?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ProductData(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    kind: str = Field(description="'reference' (learned from good photos), 'golden' (golden photos of a fixed view) or 'detector' (an ONNX file).")
    threshold: float = Field(description="A photo scoring above this is flagged defective.")
    references: int | None = Field(None, description="Good photos it was learned from.")
    reference_scores: list[float] | None = Field(
        None, description="Each reference's leave-one-out score: how a good item scores; all below the threshold.")
    flagged_references: list[int] | None = Field(None, description="1-based references that score above it (none).")


class FitJob(BaseModel):
    id: str
    product: str
    state: Literal["running", "done", "failed"]
    references: int
    created: float
    finished: float | None = None
    error: str | None = Field(None, description="Why the fit failed (the product is then unchanged).")
    result: ProductData | None = Field(None, description="The product, once done.")


@router.post("", response_model=Envelope[ProductData], status_code=201,
             responses={**error_responses(400, 403, 413, 422, 429),
                        202: {"model": Envelope[FitJob], "description": "With wait=false: the fit started."}},
             summary="Teach a product from 3–200 photos of good items (admin)")
async def fit(request: Request, principal: AdminPrincipal,
              name: str = Form(pattern=NAME, description="Product name: 1–64 letters, digits, '_', '-' or '.'; "
                               "an existing product of that name is replaced."),
              files: list[UploadFile] | None = File(None, description="Photos of good items (PNG or JPEG), one view."),
              mode: Literal["learned", "golden"] = Form("learned", description="learned: a model of good items from 3–200 "
                                                       "photos; golden: 1–20 golden photos of one fixed camera view, each new "
                                                       "photo aligned and compared with them."),
              upload_ids: list[str] | None = Form(None, description="And/or ids from POST /api/v1/uploads."),
              wait: bool = Query(True, description="false: check the photos, fit in the background, answer 202 "
                                 "and a job to follow at GET /api/v1/products/jobs/{id}.")) -> Any:
    """Fits in the request and answers the product: threshold, references and their scores. A photo
    that cannot be used is refused (400, `data: {"error": "photo_refused", "photo": n, "filename"}`)
    naming which one and why; too few / too many photos or mixed sizes are 400 `tool_input`; 429
    `tool_busy` while another product is being fitted. On any failure the product is unchanged."""
    photos = [((f.filename or ""), await f.read()) for f in files or []]
    ids = [i for raw in upload_ids or [] for i in raw.split(",") if i.strip()]
    inspection = get_services(request).inspection
    if not wait:
        job = await run_in_threadpool(inspection.start_fit_product, name, photos, ids, mode == "golden")
        return JSONResponse(ok(job), status_code=202)
    return ok(await run_in_threadpool(inspection.fit_product, name, photos, ids, mode == "golden"))


@router.get("/jobs/{job_id}", response_model=Envelope[FitJob], responses=error_responses(404, 422),
            summary="A background fit: running, done (with the product) or failed (with why)")
def fit_job(request: Request, principal: AdminPrincipal,
            job_id: str = PathParam(pattern=r"^fit-[0-9a-f]{12}$")) -> Any:
    return ok(get_services(request).inspection.get_fit_job(job_id))


@router.get("", response_model=Envelope[list[ProductData]], summary="Products photos can be checked against")
def products(request: Request, principal: CurrentPrincipal) -> Any:
    return ok(get_services(request).inspection.list_product_details())


@router.get("/{name}", response_model=Envelope[ProductData], responses=error_responses(404, 422),
            summary="A product: threshold, references and their scores")
def product(request: Request, principal: CurrentPrincipal,
            name: str = PathParam(pattern=PRODUCT, description="Product name or detector:<name>.")) -> Any:
    return ok(get_services(request).inspection.describe_product(name))


@router.delete("/{name}", response_model=Envelope[dict[str, Any]], responses=error_responses(400, 403, 404, 422),
               summary="Forget a fitted product (admin)")
def delete(request: Request, principal: AdminPrincipal,
           name: str = PathParam(pattern=NAME, description="A fitted product (ONNX detectors are files).")) -> Any:
    return ok(get_services(request).inspection.delete_product(name))
