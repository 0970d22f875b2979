"""/api/v1/advice over the full app and a real service: yesterday's simulated heater failure in
GH-1 comes back as today's advice with findings, numbers and citations (made on request, stored
once); 404 names the known zones; 422 for a malformed date or zone, 400 for
a date not on the calendar; a future date is pending with its
time; regenerate is for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.advice.day_summary import day_window
from tools.sensors.simulator import simulate

from .conftest import ADMIN, OPERATOR


def _yesterday_with_cold_nights(service):
    site = service.site
    today = datetime.now(UTC).astimezone(site.tz).date()
    start, _ = day_window(site, today - timedelta(days=1))
    simulate(site, service.parts.sensor_store, hours=24, faults=["heater_failure:GH-1"], seed=2, speed=1e9,
             start=datetime.fromtimestamp(start / 1000, UTC))
    return today


def test_todays_advice_per_zone_with_findings_and_citations(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    today = _yesterday_with_cold_nights(service)
    c = app_client(service)
    r = c.get("/api/v1/advice", headers=OPERATOR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 0 and body["data"]["date"] == today.isoformat()
    advice = {a["zone"]: a for a in body["data"]["advice"]}
    assert set(advice) == {"GH-1", "GH-2"}
    gh1 = advice["GH-1"]
    assert gh1["status"] == "ready" and gh1["day"] == (today - timedelta(days=1)).isoformat()
    assert gh1["severity"] == "warning" and gh1["mode"] == "extractive" and gh1["lang"] == "zh"
    cold = next(f for f in gh1["findings"] if f["topic"] == "air_temperature:night:low")
    assert cold["worst"] < 13 and cold["minutes"] > 300
    rec = next(r for r in gh1["recommendations"] if r["finding"]["topic"] == "air_temperature:night:low")
    cited = [c for c in gh1["citations"] if c["n"] in rec["citations"]]
    assert cited and cited[0]["section"].startswith("5.3") and cited[0]["source"] == "tomato-greenhouse-guide.zh.md"
    assert gh1["summary"]["drain"]["measured"] is False

    one = c.get("/api/v1/advice", params={"zone": "GH-1", "date": today.isoformat()}, headers=OPERATOR)
    assert one.status_code == 200 and [a["id"] for a in one.json()["data"]["advice"]] == [gh1["id"]]  # stored once
    assert c.get("/api/v1/advice").status_code == 401


def test_unknown_zone_bad_input_and_future_dates(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    c = app_client(service)
    r = c.get("/api/v1/advice", params={"zone": "GH-9"}, headers=OPERATOR)
    assert r.status_code == 404 and "GH-1, GH-2" in r.json()["msg"]
    for params in ({"date": "yesterday"}, {"date": "0"}, {"zone": "GH/1"}, {"zone": ""}):
        r = c.get("/api/v1/advice", params=params, headers=OPERATOR)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["code"] == 422
    r = c.get("/api/v1/advice", params={"date": "2026-02-30"}, headers=OPERATOR)
    assert r.status_code == 400 and "not a calendar date" in r.json()["msg"]
    future = (datetime.now(UTC) + timedelta(days=3)).astimezone(service.site.tz).date()
    r = c.get("/api/v1/advice", params={"zone": "GH-2", "date": future.isoformat()}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    pending = r.json()["data"]["advice"][0]
    assert pending["status"] == "pending" and pending["ready_at"].startswith(f"{future.isoformat()}T06:00")
    assert pending["findings"] == [] and pending["body"] is None


def test_regenerate_is_for_admins(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    _yesterday_with_cold_nights(service)
    c = app_client(service)
    first = c.get("/api/v1/advice", params={"zone": "GH-1"}, headers=OPERATOR).json()["data"]["advice"][0]
    assert c.post("/api/v1/advice/GH-1/regenerate", headers=OPERATOR).status_code == 403
    r = c.post("/api/v1/advice/GH-1/regenerate", headers=ADMIN)
    assert r.status_code == 200, r.text
    again = r.json()["data"]
    assert again["id"] > first["id"] and again["headline"] == first["headline"]
    assert c.post("/api/v1/advice/PH-1/regenerate", headers=ADMIN).status_code == 404


def test_old_dates_are_not_invented_after_the_fact(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    c = app_client(service)
    old = (datetime.now(UTC) - timedelta(days=30)).astimezone(service.site.tz).date()
    r = c.get("/api/v1/advice", params={"zone": "GH-1", "date": old.isoformat()}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["data"]["advice"][0]["status"] == "unavailable"
    assert "last 7 days" in r.json()["data"]["advice"][0]["note"]
