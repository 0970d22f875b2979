"""The OpenAPI document against the running app (schemathesis): no server errors, every status,
content type, header and body as documented, invalid input refused — for every operation, with the
fake model and an own copy of the sample index (rebuilds and rollbacks happen here).

The app is made when the module is imported (schemathesis reads the document at collection); the
service behind it is attached by a module fixture. (``schemathesis.pytest.from_fixture`` would be
the lazy way, but schemathesis 4.32 does not work with pytest 9's node ids.)"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from assistant.api.app import create_app
from assistant.api.metrics import ApiMetrics
from assistant.api.routes import install_routes
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
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


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
# of an upload (a real PNG / PDF?) and whether an asset id exists in the site profile.
CONTENT_DEPENDENT = {("POST", "/api/v1/uploads"), ("POST", "/api/v1/inspections"),
                     ("POST", "/api/v1/knowledge/documents"), ("POST", "/api/v1/work-orders")}


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
