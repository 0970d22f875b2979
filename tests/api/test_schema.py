"""The OpenAPI document against the running app (schemathesis): no server errors, every status,
content type, header and body as documented, invalid input refused — for every operation, with the
fake model and an own copy of the sample index (rebuilds and rollbacks happen here).

The app is made when the module is imported (schemathesis reads the document at collection); the
service behind it is attached by a module fixture. (``schemathesis.pytest.from_fixture`` would be
the lazy way, but schemathesis 4.32 does not work with pytest 9's node ids.)"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.formats import rfc3339_values

from assistant.api.app import create_app
from assistant.api.metrics import ApiMetrics
from assistant.api.routes import install_routes
from assistant.api.routes.schemas import SITE_ID
from assistant.settings import Settings

from schemathesis.checks import not_a_server_error, positive_data_acceptance

from .conftest import ADMIN, ADMIN_KEY, APP_SECRET, APPID, OPERATOR_KEY
from .fakes import EchoModel

HOME = Path(tempfile.mkdtemp(prefix="onsite-schema-"))
SETTINGS = Settings(home=HOME, embedding={"model": "fake"},
                    api={"api_keys": [f"{OPERATOR_KEY}:operator:op", f"{ADMIN_KEY}:admin:boss"],
                         "rate_limit_per_minute": 0})
APP = create_app(SETTINGS, metrics=ApiMetrics())
install_routes(APP)
# The alert stream never ends by itself (a client leaves it), which an in-process call would wait
# for; its framing and resumption are tested against a real server in test_alerts_api.py.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/api/v1/alerts/stream")

# --- steering: the fuzzer gets past the first gate, and tries the edges of time -----------------
# Random text is never the one model id nor a sensor of the site, so every request would stop at
# 404 and the code behind the gate would go untested (that is how `stream_options: "yes"` and a
# window in year 1 reached a 500). Half the generated requests carry a valid gate value.
SENSORS = ["GH-1-TEMP", "VT-101"]
QUESTION = {"role": "user", "content": "What is the maximum discharge pressure of pump P-101?"}
# date-time edges: year 1 and 9999 (a 24 h default window, a zone offset or the conversion to UTC
# leave datetime's range), the epoch, 2038, 2100, leap days, extreme offsets; and the usual spread.
EDGE_DATETIMES = ["0001-01-01T00:00:00", "0001-01-01T12:00:00", "0001-01-02T00:00:00", "0001-01-01T00:00:00+14:00",
                  "9999-12-31T23:59:59", "9999-12-31T23:59:59-12:00", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59",
                  "2038-01-19T03:14:08Z", "2100-01-01T00:00:00", "2024-02-29T12:00:00+08:00", "2099-12-31T00:00:00"]
schemathesis.openapi.format("date-time", st.sampled_from(EDGE_DATETIMES) | rfc3339_values("date-time"))


def _operation(context) -> tuple[str, str]:
    op = context.operation
    return (op.method.upper(), op.path) if op is not None else ("", "")


@schema.hook
def map_body(context, body):
    # Only values that are valid already are replaced, so a negative case stays invalid.
    if _operation(context) == ("POST", "/v1/chat/completions") and isinstance(body, dict):
        body = dict(body)
        if isinstance(body.get("model"), str) and len(body["model"]) <= 100:
            body["model"] = "onsite"
        if isinstance(body.get("messages"), list) and 1 <= len(body["messages"]) < 200:
            body["messages"] = [*body["messages"], QUESTION]
    return body


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    # a valid id only, so that a negative case (an id the pattern refuses) stays negative
    if isinstance(path_parameters, dict) and re.search(SITE_ID, str(path_parameters.get("sensor_id", ""))):
        return st.sampled_from([path_parameters, *({**path_parameters, "sensor_id": s} for s in SENSORS)])
    return st.just(path_parameters)


@pytest.fixture(scope="module", autouse=True)
def service(api_index, wechat_server):
    from assistant.api.wechat import WeChatClient

    from assistant.llm import LoadedModel
    from assistant.wiring import build_services
    from tools.sensors.simulator import simulate

    shutil.copytree(api_index, HOME / "index")
    svc = build_services(SETTINGS, loaded=LoadedModel(EchoModel(), "llm", "fake"))
    simulate(svc.site, svc.parts.sensor_store, hours=3, seed=1, speed=1e9, start=datetime.now(UTC) - timedelta(hours=3))
    APP.state.services, APP.state.readiness = svc, svc.readiness
    APP.state.wechat = WeChatClient.from_settings(Settings(home=HOME, api={
        "wechat_appid": APPID, "wechat_secret": APP_SECRET, "wechat_base_url": wechat_server.url}).api)
    yield svc
    APP.state.services = None
    svc.close()
    shutil.rmtree(HOME, ignore_errors=True)


COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
# Whether these accept a request depends on what it carries, which a schema cannot say: the bytes
# of an upload (a real PNG / PDF?) and whether an asset id (or a chat's scope zone / asset / crop)
# exists in the site profile.
# A sensor window is refused by rules a schema cannot state: 'from' before 'to', at most 31 days and
# 2000 buckets, years 1970..2100 (JSON Schema has no bounds for a date-time string). A completion
# needs a user message with text, and max_tokens within the server's answer budget (a setting).
CONTENT_DEPENDENT = {("POST", "/api/v1/uploads"), ("POST", "/api/v1/inspections"),
                     ("POST", "/api/v1/knowledge/documents"), ("POST", "/api/v1/work-orders"),
                     ("GET", "/api/v1/sensors/{sensor_id}/series"), ("POST", "/v1/chat/completions"),
                     ("POST", "/api/v1/chat"), ("POST", "/api/v1/chat/stream"), ("POST", "/api/v1/products"),
                     ("GET", "/api/v1/advice"), ("POST", "/api/v1/advice/{zone}/regenerate")}  # 2026-02-30: 400


# 502 / 503 here is WeChat's answer (documented): the stand-in makes an openid from any code, and a
# long code makes one WeChat would never send, which the client rightly refuses.
UPSTREAM = {("POST", "/api/v1/auth/wechat/login")}


def check(case) -> None:
    key = (case.method.upper(), case.path)
    excluded = ([positive_data_acceptance] if key in CONTENT_DEPENDENT else []) + \
        ([not_a_server_error] if key in UPSTREAM else [])
    case.call_and_validate(headers=ADMIN, excluded_checks=excluded)


@schema.parametrize()
@settings(max_examples=6, **COMMON)
def test_api_matches_its_document(case):
    check(case)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=60, **COMMON)
def test_api_matches_its_document_thoroughly(case):
    check(case)


# The operations behind a gate (a model id, a sensor of the site), with many more examples: each
# completion is a whole turn, so this is the slow profile; the default run reaches them too, with
# the documented examples and half its requests past the gate.
DEEP = schema.include(path_regex=r"^/v1/chat/completions$|/series$")


@pytest.mark.slow
@DEEP.parametrize()
@settings(max_examples=80, **COMMON)
def test_deep_operations_with_more_examples(case):
    check(case)
