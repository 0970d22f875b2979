"""Every answer is an envelope with the real HTTP status: success, each error class, 404/405/422,
unexpected exceptions (500, logged, no traceback to the client), and an accurate OpenAPI doc."""

from __future__ import annotations

import logging

import pytest
from fastapi import Depends, HTTPException
from pydantic import BaseModel

from assistant.api.app import api_router, get_services
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.errors import ConfigError, OnsiteError, ValidationError
from knowledge.errors import IndexBusyError, IndexMissingError, IngestError, UnsupportedFileError
from assistant.llm.base import CancelledError, DeadlineExceededError, InvalidDecisionError, ModelBusyError, ModelError

from .conftest import OPERATOR_KEY, bearer


class Echo(BaseModel):
    text: str
    n: int


ERRORS = {
    "validation": (ValidationError("top_k must be at most 100"), 400, "validation"),
    "ingest": (IngestError("a.pdf", "encrypted"), 422, "ingest"),
    "unsupported": (UnsupportedFileError("a.xyz", "not a type we read"), 422, "unsupported_file"),
    "index-missing": (IndexMissingError("No index yet; run onsite index."), 503, "index_missing"),
    "index-busy": (IndexBusyError("A build is running."), 409, "index_busy"),
    "config": (ConfigError("model file missing"), 500, "config"),
    "model": (ModelError("the model failed to load"), 503, "model"),
    "busy": (ModelBusyError("The model is busy.", retry_after_s=7.2), 429, "model_busy"),
    "deadline": (DeadlineExceededError("Took too long."), 504, "deadline_exceeded"),
    "cancelled": (CancelledError("Client went away."), 499, "cancelled"),
    "decision": (InvalidDecisionError("bad output twice"), 502, "invalid_decision"),
    "plain": (OnsiteError("something"), 500, "onsite"),
}


@pytest.fixture
def app_client(client):
    router = api_router(tags=["test"])

    @router.post("/echo", response_model=Envelope[Echo])
    def echo(body: Echo):
        return ok(body)

    @router.get("/raise/{name}", responses=error_responses(400, 409, 503))
    def raise_error(name: str):
        raise ERRORS[name][0]

    @router.get("/http/{status}")
    def http_error(status: int):
        raise HTTPException(status, detail="custom detail" if status != 418 else {"why": "teapot"},
                            headers={"X-Extra": "1"})

    @router.get("/boom")
    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    @router.get("/needs-service")
    def needs_service(service=Depends(get_services)):
        return ok({"service": str(service)})

    client.app.include_router(router)
    return client


def test_success_envelope(app_client):
    r = app_client.post("/api/v1/echo", json={"text": "你好", "n": 2})
    assert r.status_code == 200
    assert r.json() == {"code": 0, "msg": "ok", "data": {"text": "你好", "n": 2}}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_onsite_error_becomes_an_envelope_with_its_status(app_client, name):
    exc, status, kind = ERRORS[name]
    r = app_client.get(f"/api/v1/raise/{name}")
    body = r.json()
    assert r.status_code == status and body["code"] == status
    assert body["msg"] == exc.user_message and body["data"]["error"] == kind
    if status == 429:
        assert r.headers["Retry-After"] == "8" and body["data"]["retry_after_s"] == 8
    else:
        assert "Retry-After" not in r.headers


def test_404_405_and_422_are_envelopes(app_client):
    r = app_client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json() == {"code": 404, "msg": "Not Found", "data": {"error": "not_found"}}
    r = app_client.delete("/api/v1/echo")
    assert r.status_code == 405 and r.json()["code"] == 405 and r.json()["data"]["error"] == "method_not_allowed"
    assert "POST" in r.headers["Allow"]
    r = app_client.post("/api/v1/echo", json={"text": "x", "n": "many", "secret": "s3cr3t"})
    body = r.json()
    assert r.status_code == 422 and body["code"] == 422 and body["data"]["error"] == "validation_failed"
    assert body["data"]["errors"] == [{"loc": ["body", "n"], "msg": body["data"]["errors"][0]["msg"], "type": "int_parsing"}]
    assert body["msg"].startswith("Invalid request: body.n:")
    assert "many" not in r.text  # the offending input is not echoed
    r = app_client.post("/api/v1/echo", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == 422


def test_http_exceptions_keep_status_headers_and_detail(app_client):
    r = app_client.get("/api/v1/http/409")
    assert r.status_code == 409 and r.json() == {"code": 409, "msg": "custom detail", "data": {"error": "conflict"}}
    assert r.headers["X-Extra"] == "1"
    r = app_client.get("/api/v1/http/418")
    assert r.json()["data"]["detail"] == {"why": "teapot"} and r.json()["msg"] == "I'm a Teapot"


def test_unexpected_exception_is_a_500_envelope_logged_without_traceback_to_client(app_client, caplog):
    caplog.set_level(logging.ERROR, logger="onsite.api")
    r = app_client.get("/api/v1/boom")
    body = r.json()
    assert r.status_code == 500 and body["code"] == 500 and body["data"]["error"] == "internal_error"
    request_id = body["data"]["request_id"]
    assert request_id in body["msg"]
    assert "Traceback" not in r.text and "passwd" not in r.text and "RuntimeError" not in r.text
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None
    # the server is still fine
    assert app_client.get("/healthz").status_code == 200


def test_service_dependency_is_503_until_there_is_a_service(app_client, client_factory):
    r = app_client.get("/api/v1/needs-service")
    assert r.status_code == 503 and r.json()["data"]["error"] == "starting" and r.headers["Retry-After"] == "5"


def test_openapi_document_describes_envelopes_security_and_errors(app_client):
    client = app_client
    doc = client.get("/openapi.json").json()
    login = doc["paths"]["/api/v1/auth/wechat/login"]["post"]
    assert login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Envelope_LoginData_")
    for status in ("401", "403", "422", "429", "500", "503"):
        assert login["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert "security" not in login  # login is open
    me = doc["paths"]["/api/v1/auth/me"]["get"]
    assert {"HTTPBearer": []} in me["security"] and {"APIKeyHeader": []} in me["security"]
    # no input, but a query parameter it does not take is refused (422 unknown_query_parameter)
    assert me["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    echo = doc["paths"]["/api/v1/echo"]["post"]["responses"]["422"]
    assert echo["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert "HTTPValidationError" not in doc["components"]["schemas"] and "HTTPValidationError" not in str(doc)
    assert {"ErrorEnvelope", "ErrorData", "FieldError"} <= set(doc["components"]["schemas"])
    envelope = doc["components"]["schemas"]["Envelope_LoginData_"]["properties"]
    assert set(envelope) == {"code", "msg", "data"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/metrics" in doc["paths"] and "/readyz" in doc["paths"] and "/healthz" in doc["paths"]


def test_docs_can_be_switched_off(client_factory, settings_factory):
    c = client_factory(settings_factory(docs=False))
    assert c.get("/openapi.json").status_code == 404 and c.get("/docs").status_code == 404


def test_cors_only_when_origins_are_set(client_factory, settings_factory):
    origin = {"Origin": "https://ops.example", "Access-Control-Request-Method": "GET"}
    plain = client_factory()
    assert "access-control-allow-origin" not in plain.options("/api/v1/auth/me", headers=origin).headers
    cors = client_factory(settings_factory(cors_origins="https://ops.example"))
    r = cors.options("/api/v1/auth/me", headers={**origin, "Access-Control-Request-Headers": "Authorization"})
    assert r.headers["access-control-allow-origin"] == "https://ops.example"
    r = cors.get("/api/v1/auth/me", headers={"Origin": "https://ops.example", **bearer(OPERATOR_KEY)})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ops.example"


def test_a_path_prefix_can_have_the_openai_error_shape(client):
    from fastapi import APIRouter

    from assistant.api.envelope import openai_error_body, set_error_format

    router = APIRouter(prefix="/v1")

    @router.post("/chat/completions")
    def chat(body: Echo):
        raise ModelBusyError("The model is busy.", retry_after_s=3)

    @router.get("/models")
    def models():
        raise RuntimeError("boom")

    client.app.include_router(router)
    set_error_format(client.app, "/v1", openai_error_body)
    r = client.post("/v1/chat/completions", json={"text": "hi", "n": 1})
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json() == {"error": {"message": "The model is busy.", "type": "model_busy", "param": None, "code": "model_busy"}}
    assert client.post("/v1/chat/completions", json={}).json()["error"]["type"] == "validation_failed"
    assert client.get("/v1/nothing").json()["error"]["type"] == "not_found"
    r = client.get("/v1/models")
    assert r.status_code == 500 and r.json()["error"]["type"] == "internal_error"
    assert client.get("/api/v1/nothing").json()["code"] == 404  # the envelope elsewhere
