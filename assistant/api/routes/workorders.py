"""/api/v1/work-orders: list, propose, look at and close work orders (decisions: /approvals/{id})."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool

from assistant.api.app import api_router, get_services
from assistant.api.auth import AdminPrincipal, CurrentPrincipal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.routes.schemas import SITE_ID, WORK_ORDER_ID, CloseIn, WorkOrderIn, WorkOrderOut
from assistant.api.routes.turns import display_name

router = api_router(tags=["work orders"], responses=error_responses(401))
OrderId = PathParam(pattern=WORK_ORDER_ID, description="A work order id, e.g. WO-1A2B3C4D5E.")


@router.get("/work-orders", response_model=Envelope[list[WorkOrderOut]], responses=error_responses(422),
            summary="Work orders, newest first")
async def list_orders(
    request: Request,
    principal: CurrentPrincipal,
    status: Literal["pending", "open", "rejected", "closed"] | None = Query(None),
    asset: str | None = Query(None, max_length=64, pattern=SITE_ID),
    limit: int = Query(50, ge=1, le=500),
) -> Any:
    return ok(await run_in_threadpool(get_services(request).work_orders.list_work_orders, status, asset, limit))


@router.post("/work-orders", response_model=Envelope[WorkOrderOut], status_code=201,
             responses=error_responses(400, 422), summary="Propose a work order (pending until approved)")
async def create_order(body: WorkOrderIn, request: Request, principal: CurrentPrincipal) -> Any:
    service = get_services(request).work_orders
    order = await run_in_threadpool(lambda: service.create_work_order(
        body.asset, body.problem, body.priority, body.evidence, requested_by=display_name(principal)))
    return ok(order)


@router.get("/work-orders/{order_id}", response_model=Envelope[WorkOrderOut], responses=error_responses(404, 422),
            summary="One work order with its history")
def get_order(request: Request, principal: CurrentPrincipal, order_id: str = OrderId) -> Any:
    return ok(get_services(request).work_orders.get_work_order(order_id))


@router.post("/work-orders/{order_id}/close", response_model=Envelope[WorkOrderOut],
             responses=error_responses(400, 403, 404, 409, 422), summary="Close an open work order (admin)")
async def close_order(body: CloseIn, request: Request, principal: AdminPrincipal, order_id: str = OrderId) -> Any:
    service = get_services(request).work_orders
    return ok(await run_in_threadpool(service.close_work_order, order_id, display_name(principal), body.reason))
