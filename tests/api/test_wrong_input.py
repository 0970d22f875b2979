"""Wrong input is refused with the valid names, never answered silently (issue 14, point 6):
unknown scope zone / asset / crop on /api/v1/chat, /chat/stream and /v1/chat/completions, and query
parameters an operation does not take (``series?hours=6``) on every GET."""

from __future__ import annotations

import re

import pytest
from .conftest import OPERATOR

Q = "What is the air temperature?"


@pytest.fixture
def c(app_client):
    return app_client(simulate_hours=1)


def _refused(r, field: str, *valid: str) -> dict:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == 422 and body["data"]["error"] == "unknown_name" and body["data"]["field"] == field
    assert set(valid) <= set(body["data"]["valid"]) and all(v in body["msg"] for v in valid), body
    return body


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/chat/stream"])
def test_unknown_zone_and_asset_are_refused_with_the_valid_ids(c, path):
    _refused(c.post(path, json={"question": Q, "scope": {"zone": "GH-9"}}, headers=OPERATOR),
             "scope.zone", "GH-1", "GH-2", "PH-1")
    body = _refused(c.post(path, json={"question": Q, "scope": {"asset": "P-999"}}, headers=OPERATOR),
                    "scope.asset", "P-101", "T-101")
    assert "P-999" in body["msg"]
    _refused(c.post(path, json={"question": Q, "scope": {"crop": "cucumber"}}, headers=OPERATOR),
             "scope.crop", "tomato")


def test_known_ids_are_accepted_in_any_case(c):
    for scope in ({"zone": "GH-1"}, {"zone": "gh-1", "asset": "P-101", "crop": "Tomato"}):
        r = c.post("/api/v1/chat", json={"question": Q, "scope": scope}, headers=OPERATOR)
        assert r.status_code == 200, (scope, r.text)


def test_openai_scope_is_checked_too(c):
    r = c.post("/v1/chat/completions", headers=OPERATOR,
               json={"model": "onsite", "messages": [{"role": "user", "content": Q}], "scope": {"zone": "GH-9"}})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "unknown_name" and all(z in error["message"] for z in ("GH-1", "GH-2", "PH-1"))


def test_series_hours_is_refused_naming_the_accepted_parameters(c):
    r = c.get("/api/v1/sensors/GH-1-TEMP/series?hours=6", headers=OPERATOR)
    assert r.status_code == 422, r.text
    data = r.json()["data"]
    assert data["error"] == "unknown_query_parameter" and data["value"] == "hours"
    assert data["valid"] == ["bucket", "from", "to"] and "bucket, from, to" in r.json()["msg"]
    assert c.get("/api/v1/sensors/GH-1-TEMP/series?bucket=1h", headers=OPERATOR).status_code == 200


def test_every_get_refuses_a_query_parameter_it_does_not_take(c):
    """Every documented GET of /api/v1 and /v1; the names it gives are the ones the document declares."""
    paths = c.get("/openapi.json").json()["paths"]
    gets = {p: ops["get"] for p, ops in paths.items() if "get" in ops and p.startswith(("/api/v1/", "/v1/"))}
    assert len(gets) >= 10
    for path, operation in gets.items():
        declared = sorted(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
        r = c.get(re.sub(r"\{[^}]+\}", "x1", path), params={"hours": "6"}, headers=OPERATOR)
        assert r.status_code == 422, (path, r.text)
        body = r.json()
        if path.startswith("/v1/"):
            assert body["error"]["code"] == "unknown_query_parameter", (path, body)
        else:
            assert body["data"]["error"] == "unknown_query_parameter" and body["data"]["valid"] == declared, (path, body)


def test_a_declared_parameter_of_a_dependency_counts_as_accepted(c):
    listed = c.get("/api/v1/work-orders", params={"status": "pending"}, headers=OPERATOR)
    assert listed.status_code == 200, listed.text
