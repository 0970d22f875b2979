"""The work-order tools and the approval functions the API and UI call."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from tools.base import PlanContext, ToolResult
from tools.workorders.store import WorkOrder, WorkOrderStore

Priority = Literal["low", "medium", "high", "urgent"]


class CreateWorkOrder:
    """Propose a maintenance work order for one asset of the site. It is stored as PENDING and
    does nothing until a supervisor approves it. Give the asset id, what is wrong, a priority,
    and the evidence (citation markers or sensor readings) that supports it."""

    name: ClassVar[str] = "create_work_order"
    side_effects: ClassVar[bool] = True

    class Args(BaseModel):
        asset: str = Field(..., min_length=1, max_length=64, description="Asset id from the site profile, e.g. P-101.")
        problem: str = Field(..., min_length=5, max_length=2000, description="What is wrong and what should be done.")
        priority: Priority = Field("medium", description="low, medium, high or urgent.")
        evidence: list[str] = Field(default_factory=list, max_length=10,
                                    description="Citations or readings that support the order (≤ 10, ≤ 500 characters each).")

        @field_validator("evidence")
        @classmethod
        def _short_items(cls, items: list[str]) -> list[str]:
            if any(len(i) > 500 for i in items):
                raise ValueError("each evidence item must be at most 500 characters")
            return items

    def __init__(self, store: WorkOrderStore, known_assets: set[str] | None = None, requested_by: str = "assistant"):
        self.store = store
        self.known_assets = known_assets
        self.requested_by = requested_by

    def check(self, args: dict, context: PlanContext) -> str | None:
        """A planned order must name an asset of the site."""
        asset = args.get("asset")
        if isinstance(asset, str) and asset not in context.asset_ids:
            return f"unknown asset {asset!r}"
        return None  # a missing or malformed asset is the validator's to explain

    def run(self, args: "CreateWorkOrder.Args") -> ToolResult:
        """Store the order as pending, requested by this tool's ``requested_by``."""
        return self._propose(args, self.requested_by)

    def apply(self, args: "CreateWorkOrder.Args", approved_by: str) -> ToolResult:
        """Store the order the assistant proposed, once ``approved_by`` approved it."""
        return self._propose(args, f"{approved_by} (via assistant)")

    def _propose(self, args: "CreateWorkOrder.Args", requested_by: str) -> ToolResult:
        shown = args.model_dump()
        if self.known_assets is not None and args.asset not in self.known_assets:
            return ToolResult(self.name, shown, False, summary="unknown asset",
                              error=f"unknown asset {args.asset!r}; the site has: {', '.join(sorted(self.known_assets))}")
        order = self.store.propose(args.asset, args.problem, args.priority, args.evidence, requested_by)
        return ToolResult(self.name, shown, True, data=order.to_dict(),
                          summary=f"work order {order.id} for {order.asset} ({order.priority}) proposed; waiting for approval")


class ListWorkOrders:
    """List work orders, newest first, optionally only one status (pending, open, rejected,
    closed) or one asset. Read-only."""

    name: ClassVar[str] = "list_work_orders"
    side_effects: ClassVar[bool] = False

    class Args(BaseModel):
        status: Literal["pending", "open", "rejected", "closed"] | None = None
        asset: str | None = Field(None, max_length=64)
        limit: int = Field(20, ge=1, le=200)

    def __init__(self, store: WorkOrderStore):
        self.store = store

    def run(self, args: "ListWorkOrders.Args") -> ToolResult:
        orders = self.store.list(args.status, args.asset, args.limit)
        what = f"{args.status} " if args.status else ""
        where = f" for {args.asset}" if args.asset else ""
        return ToolResult(self.name, args.model_dump(), True, data={"orders": [o.to_dict() for o in orders]},
                          summary=f"{len(orders)} {what}work order(s){where}")


def approve(store: WorkOrderStore, order_id: str, approver: str, reason: str) -> WorkOrder:
    """A person approves a pending order: it becomes open."""
    return store.decide(order_id, "open", approver, reason)


def reject(store: WorkOrderStore, order_id: str, approver: str, reason: str) -> WorkOrder:
    """A person rejects a pending order: it is kept, marked rejected, with the reason."""
    return store.decide(order_id, "rejected", approver, reason)


def close(store: WorkOrderStore, order_id: str, actor: str, reason: str) -> WorkOrder:
    return store.decide(order_id, "closed", actor, reason)
