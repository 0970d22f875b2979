"""WorkOrderService: propose, list, decide, close — and the refusals (unknown asset or order,
bad status, a decision that does not fit, not found before conflict)."""

import pytest

from tools.errors import NotFoundError, ToolConflictError, ToolInputError
from tools.workorders.service import WorkOrderService
from tools.workorders.store import WorkOrderStore

ORDER = {"asset": "P-101", "problem": "Vibration rising; check alignment", "priority": "high",
         "evidence": ["VT-101 4.9 mm/s"]}


@pytest.fixture
def service(tmp_path):
    store = WorkOrderStore(tmp_path / "orders.sqlite")
    yield WorkOrderService(store, {"P-101", "F-301"})
    store.close()


def test_propose_approve_close_with_the_history(service):
    order = service.create_work_order(**ORDER, requested_by="key:floor-tablet")
    assert order["status"] == "pending" and order["id"].startswith("WO-")
    assert order["requested_by"] == "key:floor-tablet"
    assert order["evidence"] == ["VT-101 4.9 mm/s"] and order["priority"] == "high"
    assert service.create_work_order("F-301", "Backwash the filter")["requested_by"] == "local"

    opened = service.decide_work_order(order["id"], True, "Li Wei", "confirmed on site")
    assert opened["status"] == "open" and opened["decided_by"] == "Li Wei"
    closed = service.close_work_order(order["id"], "Li Wei", "bearing replaced")
    assert closed["status"] == "closed"
    detail = service.get_work_order(order["id"])
    assert [(e["actor"], e["action"]) for e in detail["events"]] == [
        ("key:floor-tablet", "proposed"), ("Li Wei", "open"), ("Li Wei", "closed")]


def test_reject_keeps_the_reason_and_a_second_decision_conflicts(service):
    order = service.create_work_order(**ORDER)
    rejected = service.decide_work_order(order["id"], False, "Zhang", "already handled")
    assert rejected["status"] == "rejected" and rejected["decision_reason"] == "already handled"
    with pytest.raises(ToolConflictError, match="is rejected; it cannot become open"):
        service.decide_work_order(order["id"], True, "Zhang", "changed my mind")
    with pytest.raises(ToolConflictError, match="cannot become closed"):
        service.close_work_order(order["id"], "Zhang", "done")


def test_list_filters_newest_first_and_bounds_the_limit(service):
    first = service.create_work_order(**ORDER)
    second = service.create_work_order("F-301", "Backwash the filter", "low")
    assert [o["id"] for o in service.list_work_orders()] == [second["id"], first["id"]]
    assert [o["id"] for o in service.list_work_orders(asset="F-301")] == [second["id"]]
    assert [o["id"] for o in service.list_work_orders(status="pending", limit=0)] == [second["id"]]  # at least 1
    assert service.list_work_orders(status="open") == []
    with pytest.raises(ToolInputError, match="status must be one of pending, open, rejected, closed"):
        service.list_work_orders(status="lost")


def test_invalid_orders_are_refused_with_the_tools_words_and_nothing_is_written(service):
    with pytest.raises(ToolInputError, match="unknown asset 'P-999'; the site has: F-301, P-101"):
        service.create_work_order(**{**ORDER, "asset": "P-999"})
    with pytest.raises(ToolInputError, match="priority"):
        service.create_work_order(**{**ORDER, "priority": "now"})
    with pytest.raises(ToolInputError, match="problem"):
        service.create_work_order(**{**ORDER, "problem": "x"})
    assert service.list_work_orders() == []


def test_unknown_orders_are_not_found_before_any_conflict(service):
    with pytest.raises(NotFoundError, match="no work order WO-0000000000"):
        service.get_work_order("WO-0000000000")
    for act in (lambda: service.decide_work_order("WO-0000000000", True, "Li", "x"),
                lambda: service.close_work_order("WO-0000000000", "Li", "x")):
        with pytest.raises(NotFoundError):
            act()


def test_a_decision_needs_a_name_and_a_reason(service):
    order = service.create_work_order(**ORDER)
    with pytest.raises(ToolInputError, match="name"):
        service.decide_work_order(order["id"], True, " ", "ok")
    with pytest.raises(ToolInputError, match="reason"):
        service.decide_work_order(order["id"], True, "Li", "")
    assert service.get_work_order(order["id"])["status"] == "pending"
