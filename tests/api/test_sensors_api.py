"""/api/v1/sensors: the list with statuses, one sensor's latest reading, series with from / to /
bucket, and the refusals (unknown sensor 404, bad windows 400 / 422)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from .conftest import OPERATOR


@pytest.fixture
def c(app_client):
    return app_client(simulate_hours=6)


def test_list_has_every_profile_sensor_with_a_status(c):
    r = c.get("/api/v1/sensors", headers=OPERATOR)
    assert r.status_code == 200
    sensors = r.json()["data"]
    ids = {s["id"] for s in sensors}
    assert {"GH-1-TEMP", "VT-101"} <= ids
    temp = next(s for s in sensors if s["id"] == "GH-1-TEMP")
    assert temp["unit"] == "°C" and temp["value"] is not None and temp["status"] in (
        "normal", "warning", "alarm", "trip", "emergency")
    assert c.get("/api/v1/sensors").status_code == 401


def test_latest(c):
    data = c.get("/api/v1/sensors/GH-1-TEMP/latest", headers=OPERATOR).json()["data"]
    assert data["id"] == "GH-1-TEMP" and isinstance(data["value"], float) and data["ts"] and data["summary"]
    assert "limits" in data or data["status"] in ("no_limits", "stopped")


def test_unknown_sensor_is_404(c):
    r = c.get("/api/v1/sensors/NOPE-1/latest", headers=OPERATOR)
    assert r.status_code == 404 and r.json()["data"]["error"] == "not_found"
    assert c.get("/api/v1/sensors/NOPE-1/series", headers=OPERATOR).status_code == 404
    assert c.get("/api/v1/sensors/..%2Fetc/latest", headers=OPERATOR).status_code in (404, 422)


def test_series_default_window_and_buckets(c):
    data = c.get("/api/v1/sensors/GH-1-TEMP/series", headers=OPERATOR).json()["data"]
    assert data["bucket_s"] == 300 and data["from"] < data["to"]
    assert 60 <= len(data["points"]) <= 80  # 6 h of data in 5-minute buckets
    p = data["points"][0]
    assert p["min"] <= p["mean"] <= p["max"] and p["count"] >= 1


def test_series_with_from_to_bucket(c):
    end = datetime.now().astimezone()
    start = end - timedelta(hours=2)
    r = c.get("/api/v1/sensors/VT-101/series", headers=OPERATOR,
              params={"from": start.isoformat(), "to": end.isoformat(), "bucket": "30m"})
    data = r.json()["data"]
    assert r.status_code == 200 and data["bucket_s"] == 1800 and 4 <= len(data["points"]) <= 5
    assert data["unit"] == "mm/s" and data["limits_now"]


@pytest.mark.parametrize("params, status", [
    ({"from": "2025-01-02T00:00:00", "to": "2025-01-01T00:00:00"}, 400),  # backwards
    ({"from": "2025-01-01T00:00:00", "to": "2025-03-01T00:00:00"}, 400),  # longer than 31 days
    ({"bucket": "1"}, 400),  # 86400 buckets
    ({"bucket": "5 minutes"}, 422),
    ({"from": "yesterday"}, 422),
])
def test_series_refusals(c, params, status):
    r = c.get("/api/v1/sensors/GH-1-TEMP/series", headers=OPERATOR, params=params)
    assert r.status_code == status, r.text
    assert r.json()["code"] == status
