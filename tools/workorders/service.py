"""``WorkOrderService``: work orders and the decisions on them, for the faces (REST API, chat page, CLI).

Results are plain JSON-ready dicts. Errors are ``tools.errors``: an unknown order is
``NotFoundError``, a bad argument ``ToolInputError``, a decision that does not fit the order's
status ``ToolConflictError`` (``WorkOrderError``).
"""

from __future__ import annotations

import logging
from typing import Any

from tools.base import call
from tools.errors import NotFoundError, ToolInputError
from tools.workorders.store import STATUSES, WorkOrderError, WorkOrderStore
from tools.workorders.tools import CreateWorkOrder, close
from tools.workorders.tools import approve as approve_order
from tools.workorders.tools import reject as reject_order

log = logging.getLogger(__name__)

MAX_LIST = 500


class WorkOrderService:
    """Orders of one site: proposed for its assets, decided and closed by named people."""

    def __init__(self, store: WorkOrderStore, asset_ids: set[str]):
        self.store = store
        self.asset_ids = set(asset_ids)

    def list_work_orders(self, status: str | None = None, asset: str | None = None, limit: int = 50) -> list[dict]:
        """Newest first; optionally one status (pending, open, rejected, closed) or one asset
        (``limit`` is kept within 1..500)."""
        if status is not None and status not in STATUSES:
            raise ToolInputError(f"status must be one of {', '.join(STATUSES)}")
        return [o.to_dict() for o in self.store.list(status, asset, max(1, min(int(limit), MAX_LIST)))]

    def get_work_order(self, order_id: str) -> dict[str, Any]:
        """One order with its history of events."""
        try:
            return self.store.get(order_id).to_dict()
        except WorkOrderError:
            raise NotFoundError(f"no work order {order_id}") from None

    def create_work_order(self, asset: str, problem: str, priority: str = "medium", evidence: list[str] | None = None,
                          requested_by: str = "local") -> dict[str, Any]:
        """Propose an order for an asset of the site; it is stored as pending until a person
        decides (``decide_work_order``)."""
        tool = CreateWorkOrder(self.store, self.asset_ids, requested_by=requested_by)
        result = call(tool, {"asset": asset, "problem": problem, "priority": priority,
                             "evidence": list(evidence or [])})
        if not result.ok:
            raise ToolInputError(result.error or "the work order was not created")
        return result.data

    def decide_work_order(self, order_id: str, approve: bool, by: str, reason: str) -> dict[str, Any]:
        """A person approves (pending → open) or rejects (pending → rejected) an order."""
        self.get_work_order(order_id)  # an unknown order is "not found" before any conflict
        order = (approve_order if approve else reject_order)(self.store, order_id, by, reason)
        log.info("work order %s %s by %s: %s", order_id, order.status, by, reason)
        return order.to_dict()

    def close_work_order(self, order_id: str, by: str, reason: str) -> dict[str, Any]:
        """Close an open order (the work is done)."""
        self.get_work_order(order_id)
        return close(self.store, order_id, by, reason).to_dict()

