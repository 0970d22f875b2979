"""The assembled app: readiness with the model mode, index version and manifest check, queue and
disk; metrics fed by the turns (queue depth, tokens/s, abstentions); SSE keep-alives; the OpenAPI
document listing every face; 405 with the right Allow."""

from __future__ import annotations

import asyncio
import time

from assistant.api.routes.turns import turn_events
from assistant.api.sse import parse_sse
from assistant.llm.base import FakeChatModel
from assistant.types import Event
from knowledge.versions import IndexFolder

from .conftest import ADMIN, OPERATOR
from .fakes import EchoModel
from .test_probes_metrics import parse_prometheus, value


def test_readyz_reports_model_index_queue_disk(app_client):
    c = app_client(simulate_hours=0)
    r = c.get("/readyz")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["ready"] and data["model"]["mode"] == "extractive" and data["model"]["reason"]
    assert data["index"] == {"version": "v000001", "manifest_ok": True, "problems": []}
    assert data["queue"] == {"in_flight": 0, "capacity": 8} and data["disk"]["free_mb"] > 0


def test_readyz_is_503_when_the_index_is_damaged(app_client):
    c = app_client(own_index=True, simulate_hours=0)
    folder = IndexFolder(c.app.state.services.settings.index_dir)
    (folder.versions_dir / "v000001" / "vectors.faiss").write_bytes(b"tampered")
    r = c.get("/readyz")
    assert r.status_code == 503 and r.headers["Retry-After"]
    data = r.json()["data"]
    assert not data["ready"] and "checksum mismatch vectors.faiss" in data["reason"]
    assert data["index"]["manifest_ok"] is False


def test_metrics_count_turns_tokens_and_abstentions(app_client, make_api_service):
    service = make_api_service(FakeChatModel(["The bearing temperature up to 70 °C is normal [1]."]))
    c = app_client(service)
    abstained = c.post("/api/v1/chat", json={"question": "What is the capital of France?"}, headers=OPERATOR)
    assert abstained.json()["data"]["status"] == "abstained"
    answered = c.post("/api/v1/chat/stream", json={"question": "What bearing temperature is normal for P-101?"},
                      headers=OPERATOR)
    assert parse_sse(answered.content)[-2]["mode"] == "llm"
    types, samples = parse_prometheus(c.get("/metrics", headers=ADMIN).text)
    assert value(samples, "onsite_abstentions_total", reason="insufficient_evidence") == 1
    assert value(samples, "onsite_generation_tokens_per_second_count", phase="decode") == 1
    assert value(samples, "onsite_queue_depth", queue="turns") == 0
    assert value(samples, "onsite_http_requests_total", method="POST", route="/api/v1/chat", status="200") == 1
    assert types["onsite_generation_tokens_per_second"] == "histogram"


def test_stream_sends_keepalive_comments_while_silent():
    def slow():
        time.sleep(0.35)
        yield Event("token", {"text": "hi"})

    async def collect():
        import threading

        out = []
        async for ev in turn_events(slow(), threading.Event(), heartbeat_s=0.1):
            out.append(ev)
        return out

    events = asyncio.run(collect())
    assert events[-1].type == "token" and events.count(None) >= 2


def test_openapi_lists_every_face(app_client):
    doc = app_client(simulate_hours=0).get("/openapi.json").json()
    paths = doc["paths"]
    for path, method in [("/api/v1/chat", "post"), ("/api/v1/chat/stream", "post"), ("/api/v1/inspections", "post"),
                         ("/api/v1/sensors", "get"), ("/api/v1/sensors/{sensor_id}/latest", "get"),
                         ("/api/v1/sensors/{sensor_id}/series", "get"), ("/api/v1/work-orders", "get"),
                         ("/api/v1/work-orders", "post"), ("/api/v1/approvals/{approval_id}", "post"),
                         ("/api/v1/knowledge/documents", "post"), ("/api/v1/knowledge/jobs", "post"),
                         ("/api/v1/knowledge/jobs/{job_id}", "get"), ("/api/v1/knowledge/status", "get"),
                         ("/api/v1/knowledge/rollback", "post"), ("/healthz", "get"), ("/readyz", "get"),
                         ("/metrics", "get"), ("/v1/models", "get"), ("/v1/chat/completions", "post")]:
        assert method in paths[path], (method, path)
    stream = paths["/api/v1/chat/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert "ChatEvent" in str(stream) and "ChatEvent" in doc["components"]["schemas"]
    series = paths["/api/v1/sensors/{sensor_id}/series"]["get"]
    assert {p["name"] for p in series["parameters"]} >= {"from", "to", "bucket"}
    assert paths["/api/v1/knowledge/jobs"]["post"]["responses"]["409"]


def test_405_lists_every_method_of_the_path(app_client):
    r = app_client(simulate_hours=0).delete("/api/v1/work-orders", headers=ADMIN)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST" and r.json()["code"] == 405


def test_unknown_route_is_an_envelope_404(app_client):
    r = app_client(EchoModel(), simulate_hours=0).get("/api/v1/nothing-here", headers=OPERATOR)
    assert r.status_code == 404 and r.json()["code"] == 404
    r = app_client(EchoModel(), simulate_hours=0).get("/v1/nothing-here", headers=OPERATOR)
    assert r.status_code == 404 and "error" in r.json()
