"""/healthz, /readyz and /metrics (parsed as Prometheus text format 0.0.4)."""

from __future__ import annotations

import math
import re

import pytest

from assistant.api.metrics import (
    ApiMetrics,
    Registry,
    count_abstention,
    observe_tokens_per_s,
    set_queue_depth,
)

from .conftest import ADMIN_KEY, OPERATOR_KEY, bearer

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_prometheus(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset], float]]:
    """A strict little parser: returns (TYPE per metric family, value per (name, labels))."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, f"two HELP lines for {name}"
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "histogram", "summary", "untyped"} and name not in types
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, raw_labels, value = m.groups()
        labels = {}
        if raw_labels:
            consumed = 0
            for lm in _LABEL.finditer(raw_labels):
                assert lm.start() == consumed, f"bad labels in {line!r}"
                labels[lm.group(1)] = lm.group(2).encode().decode("unicode_escape")
                consumed = lm.end()
            assert consumed == len(raw_labels), f"bad labels in {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} before its TYPE line"
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)  # accepts +Inf / NaN spelled the Go way
    return types, samples


def value(samples, name, **labels) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"code": 0, "msg": "ok", "data": {"status": "ok"}}


def test_readyz_follows_the_readiness_callback(client_factory):
    state = {"ready": False, "index": "missing", "reason": "No index yet."}
    c = client_factory(readiness=lambda: dict(state))
    r = c.get("/readyz")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json() == {"code": 503, "msg": "No index yet.", "data": state}
    state.update(ready=True, index="v3", reason=None)
    r = c.get("/readyz")
    assert r.status_code == 200 and r.json()["code"] == 0 and r.json()["data"]["index"] == "v3"


def test_readyz_is_503_when_the_check_itself_fails(client_factory):
    def broken():
        raise RuntimeError("db locked")

    r = client_factory(readiness=broken).get("/readyz")
    assert r.status_code == 503 and r.json()["data"]["error"] == "not_ready" and "db locked" not in r.text


def test_readyz_without_a_callback_is_ready(client):
    assert client.get("/readyz").json()["data"] == {"ready": True}


def test_metrics_are_valid_prometheus_text(client_factory):
    metrics = ApiMetrics()
    c = client_factory(metrics=metrics)
    c.get("/healthz")
    c.get("/healthz")
    c.get("/api/v1/auth/me", headers=bearer(OPERATOR_KEY))
    c.get("/api/v1/auth/me")
    c.get("/no/such/path/12345")
    observe_tokens_per_s(12.5, metrics=metrics)
    observe_tokens_per_s(80.0, phase="prefill", metrics=metrics)
    count_abstention(metrics=metrics)
    count_abstention("no_evidence", metrics=metrics)
    set_queue_depth(3, metrics=metrics)
    set_queue_depth(lambda: 7, queue="inspection", metrics=metrics)

    r = c.get("/metrics", headers=bearer(ADMIN_KEY))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    types, samples = parse_prometheus(r.text)
    assert types["onsite_http_requests_total"] == "counter"
    assert types["onsite_http_request_duration_seconds"] == "histogram"
    assert value(samples, "onsite_http_requests_total", method="GET", route="/healthz", status="200") == 2
    assert value(samples, "onsite_http_requests_total", method="GET", route="/api/v1/auth/me", status="200") == 1
    assert value(samples, "onsite_http_requests_total", method="GET", route="/api/v1/auth/me", status="401") == 1
    assert value(samples, "onsite_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("12345" in str(k) for k in samples)  # raw paths never become labels
    assert value(samples, "onsite_generation_tokens_per_second_count", phase="decode") == 1
    assert value(samples, "onsite_generation_tokens_per_second_sum", phase="prefill") == 80.0
    assert value(samples, "onsite_abstentions_total", reason="unsupported") == 1
    assert value(samples, "onsite_abstentions_total", reason="no_evidence") == 1
    assert value(samples, "onsite_queue_depth", queue="llm") == 3
    assert value(samples, "onsite_queue_depth", queue="inspection") == 7
    assert value(samples, "onsite_http_requests_in_flight") == 1  # the scrape itself

    # histogram buckets are cumulative, end with +Inf, and +Inf equals _count
    labels = {"method": "GET", "route": "/healthz"}
    buckets = sorted(
        ((float(dict(k[1])["le"]), v) for k, v in samples.items()
         if k[0] == "onsite_http_request_duration_seconds_bucket" and dict(k[1]).items() >= labels.items()),
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and math.isinf(buckets[-1][0])
    assert buckets[-1][1] == value(samples, "onsite_http_request_duration_seconds_count", **labels) == 2


def test_label_and_help_escaping_and_special_values():
    reg = Registry()
    reg.counter("x_total", 'help with \\ and\nnewline', ("path",)).inc(path='a"b\\c\nd')
    g = reg.gauge("y", "gauge")
    g.set(float("inf"))
    reg.gauge("z", "broken callback").set_function(lambda: 1 / 0)
    text = reg.render()
    assert '# HELP x_total help with \\\\ and\\nnewline' in text
    assert 'x_total{path="a\\"b\\\\c\\nd"} 1.0' in text
    assert "y +Inf" in text and "z NaN" in text
    types, samples = parse_prometheus(text)
    assert value(samples, "x_total", path='a"b\\c\nd') == 1
    with pytest.raises(ValueError):
        reg.counter("x_total", "again", ("other",))
    with pytest.raises(ValueError):
        reg.counter("c_total", "c").inc(-1)
    with pytest.raises(ValueError):
        reg.histogram("h", "h", ("le",))


def test_metrics_can_require_admin(client_factory, settings_factory):
    c = client_factory(settings_factory(metrics="key"))
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers=bearer(OPERATOR_KEY)).status_code == 403
    assert c.get("/metrics", headers=bearer(ADMIN_KEY)).status_code == 200
