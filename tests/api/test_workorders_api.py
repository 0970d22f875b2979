"""/api/v1/work-orders and POST /api/v1/approvals/{WO-id}: propose (operator), decide (admin),
close, the history, and the refusals."""

from __future__ import annotations

from .conftest import ADMIN, OPERATOR

ORDER = {"asset": "P-101", "problem": "Vibration rising; check alignment", "priority": "high",
         "evidence": ["VT-101 4.9 mm/s"]}


def test_propose_list_approve_close(app_client):
    c = app_client(simulate_hours=0)
    r = c.post("/api/v1/work-orders", json=ORDER, headers=OPERATOR)
    assert r.status_code == 201, r.text
    order = r.json()["data"]
    assert order["status"] == "pending" and order["id"].startswith("WO-") and "floor-tablet" in order["requested_by"]
    listed = c.get("/api/v1/work-orders", params={"status": "pending"}, headers=OPERATOR).json()["data"]
    assert [o["id"] for o in listed] == [order["id"]]

    r = c.post(f"/api/v1/approvals/{order['id']}", json={"approve": True, "reason": "go"}, headers=OPERATOR)
    assert r.status_code == 403 and r.json()["data"]["error"] == "forbidden"
    r = c.post(f"/api/v1/approvals/{order['id']}", json={"approve": True, "reason": "go"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"]["kind"] == "work_order"
    assert r.json()["data"]["work_order"]["status"] == "open"
    again = c.post(f"/api/v1/approvals/{order['id']}", json={"approve": False, "reason": "late"}, headers=ADMIN)
    assert again.status_code == 409

    r = c.post(f"/api/v1/work-orders/{order['id']}/close", json={"reason": "done"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"]["status"] == "closed"
    detail = c.get(f"/api/v1/work-orders/{order['id']}", headers=OPERATOR).json()["data"]
    assert [e["action"] for e in detail["events"]] == ["proposed", "open", "closed"]
    assert "ops-console" in detail["decided_by"]


def test_reject(app_client):
    c = app_client(simulate_hours=0)
    order = c.post("/api/v1/work-orders", json=ORDER, headers=OPERATOR).json()["data"]
    r = c.post(f"/api/v1/approvals/{order['id']}", json={"approve": False, "reason": "already handled"}, headers=ADMIN)
    assert r.json()["data"]["work_order"]["status"] == "rejected"
    assert r.json()["data"]["work_order"]["decision_reason"] == "already handled"


def test_refusals(app_client):
    c = app_client(simulate_hours=0)
    r = c.post("/api/v1/work-orders", json={**ORDER, "asset": "P-999"}, headers=OPERATOR)
    assert r.status_code == 400 and "unknown asset" in r.json()["msg"]
    assert c.post("/api/v1/work-orders", json={**ORDER, "priority": "now"}, headers=OPERATOR).status_code == 422
    assert c.post("/api/v1/work-orders", json={**ORDER, "problem": "x"}, headers=OPERATOR).status_code == 422
    assert c.get("/api/v1/work-orders/WO-0000000000", headers=OPERATOR).status_code == 404
    assert c.get("/api/v1/work-orders/../x", headers=OPERATOR).status_code in (404, 422)
    r = c.post("/api/v1/approvals/WO-0000000000", json={"approve": True, "reason": "x"}, headers=ADMIN)
    assert r.status_code == 404
    assert c.post("/api/v1/approvals/WO-0000000000", json={"approve": True}, headers=ADMIN).status_code == 422
    assert c.get("/api/v1/work-orders", params={"status": "lost"}, headers=OPERATOR).status_code == 422
    assert c.post("/api/v1/work-orders/WO-0000000000/close", json={"reason": "x"}, headers=OPERATOR).status_code == 403
