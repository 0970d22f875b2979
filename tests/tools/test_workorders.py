"""Work orders: proposals wait for a person; every decision is named, reasoned and audited."""

import pytest

from tools.base import PlanContext, ToolRegistry, call, describe
from tools.errors import ToolInputError
from tools.workorders.store import WorkOrderError, WorkOrderStore
from tools.workorders.tools import CreateWorkOrder, ListWorkOrders, approve, close, reject


@pytest.fixture
def store(tmp_path):
    s = WorkOrderStore(tmp_path / "orders.sqlite")
    yield s
    s.close()


def test_a_proposal_is_pending_until_a_person_approves(store):
    tool = CreateWorkOrder(store, known_assets={"P-101"})
    res = call(tool, {"asset": "P-101", "problem": "Vibration 5.2 mm/s above the 4.5 alarm", "priority": "high",
                      "evidence": ["[1] OM-P-101 3.1 operating limits", "VT-101 5.2 mm/s"]})
    assert res.ok and res.data["status"] == "pending" and "waiting for approval" in res.summary
    order_id = res.data["id"]
    assert [o.id for o in store.list(status="open")] == []
    opened = approve(store, order_id, "Li Wei", "confirmed on site")
    assert opened.status == "open" and opened.decided_by == "Li Wei"
    assert [(e["actor"], e["action"]) for e in opened.events] == [("assistant", "proposed"), ("Li Wei", "open")]
    closed = close(store, order_id, "Li Wei", "bearing replaced")
    assert closed.status == "closed" and len(closed.events) == 3


def test_rejection_keeps_the_order_with_the_reason(store):
    order = store.propose("P-101", "Check the seal", "low", [], "assistant")
    rejected = reject(store, order.id, "Zhang", "duplicate of WO-1")
    assert rejected.status == "rejected" and rejected.decision_reason == "duplicate of WO-1"
    with pytest.raises(WorkOrderError, match="cannot become open"):
        approve(store, order.id, "Zhang", "changed my mind")


def test_decisions_need_a_name_and_a_reason(store):
    order = store.propose("P-101", "Check the seal", "low", [], "assistant")
    with pytest.raises(ToolInputError, match="name"):
        approve(store, order.id, " ", "ok")
    with pytest.raises(ToolInputError, match="reason"):
        approve(store, order.id, "Li", "")
    with pytest.raises(WorkOrderError, match="no work order"):
        approve(store, "WO-NOPE", "Li", "ok")


def test_bad_arguments_and_unknown_assets_are_reported_not_raised(store):
    tool = CreateWorkOrder(store, known_assets={"P-101"})
    bad = call(tool, {"asset": "P-101", "problem": "x", "priority": "asap"})
    assert not bad.ok and "priority" in bad.error and "problem" in bad.error
    unknown = call(tool, {"asset": "P-999", "problem": "Noisy pump"})
    assert not unknown.ok and "P-101" in unknown.error
    assert store.list() == []  # nothing written


def test_list_is_read_only_and_filters(store):
    store.propose("P-101", "Check the seal", "low", [], "assistant")
    store.propose("F-301", "Backwash the filter", "medium", [], "assistant")
    registry = ToolRegistry([CreateWorkOrder(store), ListWorkOrders(store)])
    res = registry.call("list_work_orders", {"asset": "F-301"})
    assert res.ok and [o["asset"] for o in res.data["orders"]] == ["F-301"] and res.summary == "1 work order(s) for F-301"
    assert registry.call("nope", {}).error.startswith("unknown tool 'nope'")
    schemas = {s["name"]: s for s in registry.schemas()}
    assert schemas["create_work_order"]["side_effects"] is True and schemas["list_work_orders"]["side_effects"] is False
    assert "PENDING" in describe(CreateWorkOrder(store))["description"]
    assert schemas["create_work_order"]["parameters"]["properties"]["priority"]["enum"] == ["low", "medium", "high", "urgent"]


def test_a_planned_order_must_name_an_asset_of_the_site(store):
    registry = ToolRegistry([CreateWorkOrder(store, known_assets={"P-101"})])
    context = PlanContext(asset_ids={"P-101"})
    args, reason = registry.check("create_work_order", {"asset": "P-101", "problem": "Noisy pump"}, context)
    assert reason is None and args == {"asset": "P-101", "problem": "Noisy pump", "priority": "medium", "evidence": []}
    assert registry.check("create_work_order", {"asset": "P-999", "problem": "Noisy pump"}, context)[1] == \
        "unknown asset 'P-999'"
    assert registry.check("create_work_order", {"asset": ["P-101"], "problem": "Noisy pump"}, context)[1].startswith(
        "invalid arguments: asset")
    assert store.list() == []  # checking writes nothing


def test_an_approved_order_is_written_for_the_approver_via_the_assistant(store):
    registry = ToolRegistry([CreateWorkOrder(store, known_assets={"P-101"}), ListWorkOrders(store)])
    res = registry.apply("create_work_order", {"asset": "P-101", "problem": "Vibration above the alarm"}, "Li Wei")
    assert res.ok and res.data["status"] == "pending" and res.data["requested_by"] == "Li Wei (via assistant)"
    assert [o.id for o in store.list()] == [res.data["id"]]
    unknown = registry.apply("create_work_order", {"asset": "P-999", "problem": "Vibration above the alarm"}, "Li")
    bad = registry.apply("create_work_order", {"asset": "P-101", "problem": "x"}, "Li")
    assert not unknown.ok and "unknown asset 'P-999'" in unknown.error
    assert not bad.ok and bad.summary == "create_work_order: invalid arguments" and "problem" in bad.error
    refused = registry.apply("list_work_orders", {}, "Li")
    assert not refused.ok and refused.summary == "not allowed" and "no approval path" in refused.error
    assert not registry.apply("nope", {}, "Li").ok
    assert len(store.list()) == 1
