"""/api/v1/alerts: list with filters and paging, one alert, acknowledge (operator) and close
(admin) with who and when, the refusals (404, 409, 422, 403), the live SSE stream (an alert
raised after connecting arrives within 2 s; a reconnect with Last-Event-ID resumes without
repeats) and the open-alerts gauge. Alerts are raised straight into the real store, as the watch
does."""

from __future__ import annotations

import threading
import time

import httpx

from assistant.api.sse import SSEDecoder

from .conftest import ADMIN, OPERATOR


def _raise(service, target="P-101", cause="anomaly:P-101", severity="warning", title="Vibration rising", at=None):
    return service.parts.alert_store.raise_alert(target, cause, severity, title, {"VT-101": 4.9}, at=at).alert


def test_list_filters_and_pages(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    c = app_client(service)
    a = _raise(service, cause="anomaly:P-101", severity="warning", at=1_000)
    b = _raise(service, target="GH-1", cause="limit_high:GH-1-TEMP", severity="alarm", at=2_000)
    d = _raise(service, target="GH-1", cause="sensor_flatline:GH-1-RH", severity="info", at=3_000)
    r = c.get("/api/v1/alerts", headers=OPERATOR)
    assert r.status_code == 200, r.text
    page = r.json()["data"]
    assert [x["id"] for x in page["alerts"]] == [d.id, b.id, a.id] and page["total"] == 3
    assert page["next_offset"] is None and page["alerts"][0]["explanation"] == {"VT-101": 4.9}

    def ids(**params):
        r = c.get("/api/v1/alerts", params=params, headers=OPERATOR)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["data"]["alerts"]]

    assert ids(target="GH-1") == [d.id, b.id]
    assert ids(severity="alarm") == [b.id]
    assert ids(min_severity="warning") == [b.id, a.id]
    assert ids(since=2_000) == [d.id, b.id]
    first = c.get("/api/v1/alerts", params={"limit": 2}, headers=OPERATOR).json()["data"]
    assert [x["id"] for x in first["alerts"]] == [d.id, b.id] and first["next_offset"] == 2 and first["total"] == 3
    assert ids(limit=2, offset=first["next_offset"]) == [a.id]
    c.post(f"/api/v1/alerts/{a.id}/ack", headers=OPERATOR)
    assert ids(state="acknowledged") == [a.id] and ids(state="open") == [d.id, b.id]
    assert ids(state="active") == [d.id, b.id, a.id] and ids(state="closed") == []


def test_bad_filters_are_422_in_the_envelope(app_client):
    c = app_client(simulate_hours=0)
    for params in ({"state": "snoozed"}, {"severity": "fatal"}, {"min_severity": "loud"}, {"limit": 0},
                   {"limit": 501}, {"offset": -1}, {"since": "yesterday"}, {"since": 10**19}):
        r = c.get("/api/v1/alerts", params=params, headers=OPERATOR)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["code"] == 422 and r.json()["data"]["error"], params
    assert c.get("/api/v1/alerts/abc", headers=OPERATOR).status_code == 422
    assert c.get("/api/v1/alerts/stream", headers={**OPERATOR, "Last-Event-ID": "x1"}).status_code == 422
    assert c.get("/api/v1/alerts").status_code == 401


def test_ack_then_close_with_roles_who_and_when(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    c = app_client(service)
    alert = _raise(service)
    before = int(time.time() * 1000)
    r = c.post(f"/api/v1/alerts/{alert.id}/ack", headers=OPERATOR)
    assert r.status_code == 200, r.text
    acked = r.json()["data"]
    assert acked["state"] == "acknowledged" and "floor-tablet" in acked["acked_by"] and acked["acked_at"] >= before

    again = c.post(f"/api/v1/alerts/{alert.id}/ack", headers=OPERATOR)
    assert again.status_code == 409 and "already acknowledged" in again.json()["msg"]

    r = c.post(f"/api/v1/alerts/{alert.id}/close", json={"note": "belt tightened"}, headers=OPERATOR)
    assert r.status_code == 403 and r.json()["data"]["error"] == "forbidden"
    assert c.get(f"/api/v1/alerts/{alert.id}", headers=OPERATOR).json()["data"]["state"] == "acknowledged"

    r = c.post(f"/api/v1/alerts/{alert.id}/close", json={"note": "belt tightened"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    closed = r.json()["data"]
    assert closed["state"] == "closed" and "ops-console" in closed["closed_by"] and closed["close_note"] == "belt tightened"
    assert closed["closed_at"] >= acked["acked_at"]
    detail = c.get(f"/api/v1/alerts/{alert.id}", headers=OPERATOR).json()["data"]
    assert [e["action"] for e in detail["events"]] == ["opened", "acknowledged", "closed"]

    assert c.post(f"/api/v1/alerts/{alert.id}/close", headers=ADMIN).status_code == 409
    assert c.post(f"/api/v1/alerts/{alert.id}/ack", headers=OPERATOR).status_code == 409
    other = _raise(service, cause="anomaly:P-102")
    r = c.post(f"/api/v1/alerts/{other.id}/close", headers=ADMIN)  # no body: no note
    assert r.status_code == 200 and r.json()["data"]["close_note"] == ""
    r = c.post(f"/api/v1/alerts/{other.id}/close", json={"note": "x", "extra": 1}, headers=ADMIN)
    assert r.status_code == 422


def test_unknown_alert_is_404(app_client):
    c = app_client(simulate_hours=0)
    for method, path in (("get", "/api/v1/alerts/999"), ("post", "/api/v1/alerts/999/ack"),
                         ("post", "/api/v1/alerts/999/close")):
        r = getattr(c, method)(path, headers=ADMIN)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["code"] == 404 and "999" in r.json()["msg"]


def test_open_alerts_by_severity_in_metrics(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    c = app_client(service)
    _raise(service, severity="alarm")
    _raise(service, cause="anomaly:P-102", severity="alarm")
    closed = _raise(service, cause="anomaly:P-103", severity="critical")
    service.alerts.close_alert(closed.id, "ana")
    text = c.get("/metrics", headers=ADMIN).text
    assert 'onsite_alerts_open{severity="alarm"} 2.0' in text
    assert 'onsite_alerts_open{severity="critical"} 0.0' in text


class _Reader:
    """Reads an alert stream in a thread: events (with their ids) as they arrive."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.events: list[tuple[int, dict]] = []
        self.pings = 0
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the stream did not start"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        decoder = SSEDecoder()
        with httpx.stream("GET", url, headers=headers, timeout=10) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            self.connected.set()
            for chunk in r.iter_raw():
                self.pings += chunk.count(b": ping")
                for event in decoder.feed(chunk):
                    self.events.append((event["seq"], event))
                if self.stop.is_set():
                    return

    def wait_for(self, n: int, timeout: float) -> float:
        start = time.monotonic()
        while len(self.events) < n:
            assert time.monotonic() - start < timeout, f"{len(self.events)} of {n} events after {timeout} s"
            time.sleep(0.02)
        return time.monotonic() - start


def test_stream_delivers_new_alerts_and_resumes_without_repeats(live_server, monkeypatch):
    from assistant.api.routes import alerts as routes

    monkeypatch.setattr(routes, "HEARTBEAT_S", 0.3)  # keep-alives fast enough to see in a test
    server = live_server(simulate_hours=0)
    service = server.service
    old = _raise(service, cause="anomaly:OLD")  # before connecting: a new stream starts after it
    url = f"{server.url}/api/v1/alerts/stream"
    reader = _Reader(url, OPERATOR)
    time.sleep(0.4)
    first = _raise(service, severity="alarm", title="Discharge pressure high")
    took = reader.wait_for(1, timeout=2.0)
    seq, change = reader.events[0]
    assert change["action"] == "opened" and change["alert"]["id"] == first.id and change["alert"]["severity"] == "alarm"
    assert took < 2.0 and old.id not in [e["alert_id"] for _, e in reader.events]
    service.alerts.acknowledge_alert(first.id, "ana")
    reader.wait_for(2, timeout=2.0)
    assert reader.events[1][1]["action"] == "acknowledged" and reader.events[1][1]["actor"] == "ana"
    time.sleep(0.5)
    assert reader.pings >= 1  # keep-alives while nothing changes
    reader.stop.set()

    # the client reconnects with the last id it saw: only what came after, each once
    service.alerts.close_alert(first.id, "boss", "fixed")
    second = _raise(service, cause="anomaly:P-102")
    again = _Reader(url, {**OPERATOR, "Last-Event-ID": str(reader.events[0][0])})
    again.wait_for(3, timeout=2.0)
    time.sleep(0.4)
    got = [(e["alert_id"], e["action"]) for _, e in again.events]
    assert got == [(first.id, "acknowledged"), (first.id, "closed"), (second.id, "opened")]
    seqs = [s for s, _ in again.events]
    assert seqs == sorted(set(seqs)) and seqs[0] > seq
    again.stop.set()

    # ?after= works the same way (for clients that cannot set headers)
    third = _Reader(f"{url}?after={seqs[1]}", OPERATOR)
    third.wait_for(1, timeout=2.0)
    assert [(e["alert_id"], e["action"]) for _, e in third.events] == [(second.id, "opened")]
    third.stop.set()

    # clients that leave end their streams: nothing is left running on the server
    in_flight = server.app.state.metrics.in_flight
    deadline = time.monotonic() + 3
    while in_flight.value() > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_flight.value() == 0
