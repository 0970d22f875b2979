"""Signing in to the page: with API keys configured the page needs a session (sign-in page →
HttpOnly cookie), roles are enforced in the handlers (through Gradio's own event route, with the
cookie), sign-out ends it; without keys the page stays open and `onsite serve` keeps to loopback."""

from __future__ import annotations

import html
import json
import logging
import uuid
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from assistant.api.auth import Authenticator, Principal
from assistant.api.metrics import ApiMetrics
from assistant.errors import OnsiteError
from assistant.server import build_app, check_exposure, is_loopback, serve
from assistant.settings import Settings
from tests.ui.fakes import FakeService
from ui.login import PageAuth, safe_next
from ui.sources_panel import KnownSources, PageImages
from ui.tab_admin import AdminHandlers
from ui.tab_chat import ChatHandlers
from ui.tab_orders import OrderHandlers

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

OPERATOR_KEY = "operator-key-0123456789abcdef"
ADMIN_KEY = "admin-key-fedcba9876543210xyz"
KEYS = [f"{OPERATOR_KEY}:operator:floor-tablet", f"{ADMIN_KEY}:admin:ops-console"]
COOKIE = "onsite_session"


def _settings(home, keys=KEYS, **api) -> Settings:
    return Settings(home=home, llm={"backend": "extractive"},
                    api={"api_keys": keys, "rate_limit_per_minute": 0, **api})


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch):
    monkeypatch.delenv("ONSITE_API_KEYS", raising=False)
    monkeypatch.delenv("ONSITE_API__API_KEYS", raising=False)
    monkeypatch.delenv("ONSITE_API__ALLOW_OPEN", raising=False)


@pytest.fixture
def site(tmp_path):
    """site(keys=KEYS, base_url=...) → (TestClient over build_app with the page, the fake service)."""
    clients = []

    def make(keys=KEYS, base_url="http://testserver", **api):
        service = FakeService(tmp_path / "home")
        service.settings = _settings(tmp_path / "home", keys, **api)
        app = build_app(service.settings, service, metrics=ApiMetrics())
        client = TestClient(app, base_url=base_url, raise_server_exceptions=False).__enter__()
        clients.append(client)
        return client, service

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _sign_in(client: TestClient, key: str):
    return client.post("/api/v1/auth/session", json={"key": key})


def _set_cookie(response) -> str:
    return "; ".join(response.headers.get_list("set-cookie"))


# --- sign-in, sign-out ----------------------------------------------------------------------------


def test_without_a_session_the_page_sends_people_to_sign_in(site):
    client, _ = site()
    page = client.get("/ui/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/ui-login?next=/ui/"
    assert client.get("/", follow_redirects=True).url.path == "/ui-login"
    for path in ("/ui/config", "/ui/gradio_api/info", "/ui/gradio_api/heartbeat/abc", "/ui/theme.css"):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["data"]["error"] == "unauthorized", path
    join = client.post("/ui/gradio_api/queue/join", json={"data": ["en"], "fn_index": 0, "session_hash": "x"})
    assert join.status_code == 401
    assert client.get("/ui/", headers={"Cookie": f"{COOKIE}=ons1.forged.token"}, follow_redirects=False).status_code == 303


def test_the_sign_in_page_is_plain_escaped_and_bilingual(site):
    client, _ = site()
    en = client.get("/ui-login", params={"next": "/ui/?x=\"><script>alert(1)</script>"})
    assert en.status_code == 200 and en.headers["content-type"].startswith("text/html")
    body = en.text
    assert 'action="/ui-login?lang=en"' in body and 'type="password"' in body and "Sign in" in body
    assert "<script" not in body and "http://" not in body and "https://" not in body  # nothing from elsewhere
    assert "&quot;&gt;&lt;script&gt;" in body  # the 'next' path comes back escaped
    csp = en.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert en.headers["cache-control"] == "no-store"
    zh = client.get("/ui-login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "访问密钥" in zh.text and 'lang="zh-CN"' in zh.text


@pytest.mark.parametrize("lang, other", [("zh", "en"), ("en", "zh")])
def test_the_sign_in_page_is_whole_in_one_language_and_offers_the_other(site, lang, other):
    """Every string of the sign-in page in the visitor's language (Accept-Language), a link to the
    other language, and an error after a wrong key in the language the form was in."""
    from ui.i18n import TEXT, t

    client, _ = site()
    accept = "zh-CN,zh;q=0.9" if lang == "zh" else "en-US,en;q=0.9"
    body = client.get("/ui-login", headers={"Accept-Language": accept}).text
    page_keys = ["login.title", "login.heading", "login.intro", "login.key", "login.submit", "login.hint"]
    for key in page_keys:
        assert html.escape(t(lang, key)) in body, key
        assert html.escape(t(other, key)) not in body, key  # nothing left in the other language
    assert f'href="/ui-login?lang={other}&amp;next=/ui/"' in body and html.escape(t(lang, "login.switch")) in body
    switched = client.get(f"/ui-login?lang={other}&next=/ui/", headers={"Accept-Language": accept}).text
    assert all(html.escape(t(other, k)) in switched for k in page_keys)
    wrong = client.post(f"/ui-login?lang={other}", data={"key": "not-a-key-at-all-0000", "next": "/ui/"},
                        headers={"Accept-Language": accept, "Origin": "http://testserver"})
    assert wrong.status_code == 401 and t(other, "login.bad_key") in wrong.text
    assert set(TEXT["login.switch"]) == {"中文", "English"}


def test_a_good_key_sets_an_httponly_cookie_and_the_page_loads(site):
    client, _ = site()
    r = _sign_in(client, OPERATOR_KEY)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 0 and body["data"]["principal"]["id"] == "key:floor-tablet"
    assert body["data"]["principal"]["role"] == "operator" and 0 < body["data"]["expires_in"] <= 12 * 3600
    assert "token" not in json.dumps(body["data"])  # the token is in the cookie only
    cookie = _set_cookie(r).lower()
    assert f"{COOKIE}=ons1." in cookie and "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    config = client.get("/ui/config").json()
    assert config["username"] == "key:floor-tablet"  # Gradio's gr.Request.username
    assert client.get("/ui-login", follow_redirects=False).headers["location"] == "/ui/"  # already signed in
    # The cookie is the page's: the REST API still wants its credentials in a header.
    assert client.get("/api/v1/auth/me").status_code == 401


def test_the_cookie_is_secure_over_https(site):
    client, _ = site(base_url="https://testserver")
    r = _sign_in(client, ADMIN_KEY)
    assert r.status_code == 200 and "secure" in _set_cookie(r).lower()


@pytest.mark.parametrize("key", ["wrong-key-0123456789abcdef", OPERATOR_KEY[:-1], "ons1.e30.abc"])
def test_a_bad_key_gets_an_error_envelope_and_no_cookie(site, key):
    client, _ = site()
    r = _sign_in(client, key)
    assert r.status_code == 401 and r.json()["code"] == 401 and r.json()["data"]["error"] == "unauthorized"
    assert "set-cookie" not in r.headers
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    assert _sign_in(client, "").status_code == 422


def test_a_session_token_cannot_be_used_as_a_key(site):
    client, _ = site()
    token = _sign_in(client, OPERATOR_KEY).cookies[COOKIE]
    client.cookies.clear()
    assert _sign_in(client, token).status_code == 401  # a session cannot extend itself


def test_the_html_form_signs_in_and_goes_back_to_the_page(site):
    client, _ = site()
    ok = client.post("/ui-login", data={"key": ADMIN_KEY, "next": "/ui/?tab=orders"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/?tab=orders"
    assert "httponly" in _set_cookie(ok).lower()
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    client.cookies.clear()
    bad = client.post("/ui-login", data={"key": "nope", "next": "/ui/"}, follow_redirects=False)
    assert bad.status_code == 401 and "That key is not valid." in bad.text and "set-cookie" not in bad.headers
    elsewhere = client.post("/ui-login", data={"key": ADMIN_KEY, "next": "https://evil.example/"}, follow_redirects=False)
    assert elsewhere.headers["location"] == "/ui/"
    client.cookies.clear()
    cross = client.post("/ui-login", data={"key": ADMIN_KEY}, headers={"Origin": "https://evil.example"},
                        follow_redirects=False)
    assert cross.status_code == 403 and "set-cookie" not in cross.headers


@pytest.mark.parametrize("value, expected", [
    (None, "/ui/"), ("/ui/", "/ui/"), ("/ui/?a=1", "/ui/?a=1"), ("//evil.example/ui/", "/ui/"),
    ("https://evil.example/ui/", "/ui/"), ("/ui/\\\\evil", "/ui/"), ("/docs", "/ui/"), ("/ui/\r\nX: y", "/ui/"),
])
def test_only_the_page_is_a_place_to_return_to(value, expected):
    assert safe_next(value, "/ui") == expected


def test_sign_out_clears_the_session(site):
    client, _ = site()
    _sign_in(client, OPERATOR_KEY)
    out = client.get("/ui-logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"].startswith("/ui-login?signed_out=1")
    cleared = _set_cookie(out).lower()
    assert f'{COOKIE}=""' in cleared or "max-age=0" in cleared
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    assert "You are signed out." in client.get(out.headers["location"]).text
    _sign_in(client, OPERATOR_KEY)
    assert client.delete("/api/v1/auth/session").json()["data"] == {"signed_out": True}
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    # A link on another site does not sign anyone out.
    _sign_in(client, OPERATOR_KEY)
    client.get("/ui-logout", headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert client.get("/ui/", follow_redirects=False).status_code == 200


def test_signing_out_ends_the_session_on_the_server(site):
    """The red-team finding: after signing out, the old cookie value still opened /ui/config."""
    client, _ = site()
    for sign_out in (lambda: client.get("/ui-logout", follow_redirects=False),
                     lambda: client.delete("/api/v1/auth/session")):
        token = _sign_in(client, OPERATOR_KEY).cookies[COOKIE]
        assert client.get("/ui/config").status_code == 200
        sign_out()
        client.cookies.clear()
        replayed = client.get("/ui/config", headers={"Cookie": f"{COOKIE}={token}"})
        assert replayed.status_code == 401 and replayed.json()["data"]["error"] == "unauthorized"
        assert client.get("/ui/", headers={"Cookie": f"{COOKIE}={token}"}, follow_redirects=False).status_code == 303
        assert client.get("/ui/config", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_removing_the_key_and_restarting_closes_its_page_sessions(site):
    client, _ = site()
    tablet = _sign_in(client, OPERATOR_KEY).cookies[COOKIE]
    console = _sign_in(client, ADMIN_KEY).cookies[COOKIE]
    restarted, _ = site(keys=[f"{ADMIN_KEY}:admin:ops-console"])  # same data home, the tablet's key removed
    assert restarted.get("/ui/config", headers={"Cookie": f"{COOKIE}={tablet}"}).status_code == 401
    assert restarted.get("/ui/config", headers={"Cookie": f"{COOKIE}={console}"}).status_code == 200


def test_an_admins_revocation_closes_the_page_at_once(site):
    client, _ = site()
    tablet = _sign_in(client, OPERATOR_KEY).cookies[COOKIE]
    console = _sign_in(client, ADMIN_KEY).cookies[COOKIE]
    client.cookies.clear()
    r = client.post("/api/v1/auth/revoke", json={"principal": "key:floor-tablet"},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and r.json()["data"]["sessions_ended"] == 1
    assert client.get("/ui/config", headers={"Cookie": f"{COOKIE}={tablet}"}).status_code == 401
    assert client.get("/ui/config", headers={"Cookie": f"{COOKIE}={console}"}).status_code == 200


def test_the_page_renews_its_cookie_past_half_its_life(site):
    client, _ = site()
    authenticator = client.app.state.authenticator
    signer = authenticator.signer
    first = _sign_in(client, OPERATOR_KEY).cookies[COOKIE]
    fresh = client.get("/ui/config")
    assert fresh.status_code == 200 and "set-cookie" not in fresh.headers  # young: left alone
    real_clock = signer.clock
    signer.clock = lambda: real_clock() + authenticator.page_idle_s * 0.6
    try:
        renewed = client.get("/ui/config")
        assert renewed.status_code == 200
        cookie = _set_cookie(renewed).lower()
        assert f"{COOKIE}=ons1." in cookie and "httponly" in cookie and "samesite=strict" in cookie
        second = renewed.cookies[COOKIE]
        assert second != first
        assert client.app.state.authenticator.signer.claims(second)["exp"] > signer.claims(first)["exp"]
        assert client.get("/ui/config", headers={"Cookie": f"{COOKIE}={second}"}).status_code == 200
        # an ended session is not renewed
        client.delete("/api/v1/auth/session")
        client.cookies.clear()
        ended = client.get("/ui/config", headers={"Cookie": f"{COOKIE}={second}"})
        assert ended.status_code == 401 and "set-cookie" not in ended.headers
    finally:
        signer.clock = real_clock


def test_a_bearer_key_opens_the_page_too(site):
    client, _ = site()
    r = client.get("/ui/config", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and r.json()["username"] == "key:ops-console"


# --- roles through Gradio's event route ----------------------------------------------------------


def _fn(client: TestClient, elem_id: str, trigger: str = "click") -> int:
    cfg = client.get("/ui/config").json()
    ids = {c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == elem_id}
    return next(i for i, d in enumerate(cfg["dependencies"]) if any(t[0] in ids and t[1] == trigger for t in d["targets"]))


def _load_fns(client: TestClient) -> list[int]:
    cfg = client.get("/ui/config").json()
    return [i for i, d in enumerate(cfg["dependencies"]) if any(t[1] == "load" for t in d["targets"])]


def _run(client: TestClient, fn: int, data: list, session: str | None = None) -> dict[str, Any]:
    session = session or uuid.uuid4().hex[:10]
    r = client.post("/ui/gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session})
    assert r.status_code == 200, r.text
    last = None
    with client.stream("GET", f"/ui/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
                last = message
    raise AssertionError(f"no result: {last}")


def _decide(client: TestClient, data: list) -> dict[str, Any]:
    """Approve a work order as a page would: list the orders (the picker's choices), then click."""
    session = uuid.uuid4().hex[:10]
    assert _run(client, _fn(client, "onsite-orders-refresh"), ["en"], session)["success"]
    return _run(client, _fn(client, "onsite-order-approve"), data, session)


def test_an_operator_cannot_use_the_admin_handlers(site):
    client, service = site()
    _sign_in(client, OPERATOR_KEY)
    rollback = _run(client, _fn(client, "onsite-rollback"), ["en"])
    assert rollback["success"] and rollback["output"]["data"][0] == "Only an administrator can do this."
    assert service.rollbacks == 0
    approve = _decide(client, ["WO-1", "Mallory", "", "en"])
    assert approve["output"]["data"][2] == "Only an administrator can do this."
    assert service.orders[0]["status"] == "pending"
    save = _run(client, _fn(client, "onsite-doc-save"), [[], "en"])
    assert save["output"]["data"][0] == "Only an administrator can do this."
    # What the page shows an operator: no documents tab, no decision controls on work orders.
    load = _run(client, _load_fns(client)[0], ["auto"])["output"]["data"]
    assert "floor-tablet" in load[4] and "operator" in load[4]
    assert load[5]["visible"] is False
    assert any(u.get("visible") is False and u.get("label") == "Documents" for u in load[6:] if isinstance(u, dict))


def test_loading_the_page_as_an_operator_logs_no_refused_admin_action(site, caplog):
    """Deciding what an operator's page shows is not an admin action refused: only a real one is logged."""
    client, _ = site()
    _sign_in(client, OPERATOR_KEY)
    with caplog.at_level(logging.INFO, logger="ui.login"):
        for _ in range(3):
            assert _run(client, _load_fns(client)[0], ["auto"])["success"]
        assert not [r for r in caplog.records if "tried an" in r.getMessage()]
        assert _run(client, _fn(client, "onsite-rollback"), ["en"])["success"]
    refused = [r for r in caplog.records if "tried an admin action" in r.getMessage()]
    assert len(refused) == 1 and "floor-tablet" in refused[0].getMessage()


def test_an_admin_decides_under_their_own_name(site):
    client, service = site()
    _sign_in(client, ADMIN_KEY)
    approve = _decide(client, ["WO-1", "Somebody Else", "", "en"])
    assert approve["success"], approve
    assert service.orders[0]["status"] == "open" and service.orders[0]["decided_by"] == "key:ops-console"
    assert _run(client, _fn(client, "onsite-rollback"), ["en"])["success"] and service.rollbacks == 1
    load = _run(client, _load_fns(client)[0], ["auto"])["output"]["data"]
    assert load[5]["visible"] is True
    assert any(u.get("visible") is True and u.get("label") == "Documents" for u in load[6:] if isinstance(u, dict))


def test_an_expired_or_missing_session_cannot_run_events(site):
    client, service = site()
    _sign_in(client, ADMIN_KEY)
    fn = _fn(client, "onsite-rollback")
    client.cookies.clear()
    r = client.post("/ui/gradio_api/queue/join", json={"data": ["en"], "fn_index": fn, "session_hash": "s1"})
    assert r.status_code == 401 and service.rollbacks == 0


# --- roles in the handlers themselves -------------------------------------------------------------


class _Req:
    """What the handlers read of a ``gr.Request``: headers and cookies."""

    def __init__(self, cookies=None, headers=None):
        self.cookies, self.headers = cookies or {}, headers or {}


@pytest.fixture
def auth(tmp_path) -> PageAuth:
    return PageAuth(Authenticator.from_settings(_settings(tmp_path / "auth")))


def _session(auth: PageAuth, role: str, name: str) -> _Req:
    token = auth.authenticator.issue(Principal(id=f"key:{name}", role=role, name=name, via="api_key")).token
    return _Req(cookies={COOKIE: token})


def _drain(gen):
    return list(gen)


def test_handlers_check_the_role_of_the_request(tmp_path, auth):
    service = FakeService(tmp_path / "svc")
    operator, admin = _session(auth, "operator", "floor-tablet"), _session(auth, "admin", "ops-console")
    orders, docs = OrderHandlers(service, auth), AdminHandlers(service, auth=auth)
    for request in (operator, None, _Req(), _Req(cookies={COOKIE: "ons1.x.y"}),
                    gr.Request(headers={"authorization": f"Bearer {OPERATOR_KEY}"})):
        assert orders.approve("WO-1", "Wang", "", "en", request)[2] in (
            "Only an administrator can do this.", "Your sign-in has ended: reload the page and sign in again.")
        assert docs.rollback("en", request)[0] != "Rolled back: **v0** is live."
    assert docs.save(["/tmp/x.md"], "en", operator) == "Only an administrator can do this."
    assert _drain(docs.rebuild("en", progress=lambda *a, **k: None, request=operator))[0][0].startswith("Only")
    assert service.rollbacks == 0 and service.knowledge_jobs.started == 0 and service.orders[0]["status"] == "pending"
    orders.reject("WO-1", "typed name", "broken", "en", admin)
    assert service.orders[0]["status"] == "rejected" and service.orders[0]["decided_by"] == "key:ops-console"
    bearer_admin = gr.Request(headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert docs.rollback("en", bearer_admin)[0] == "Rolled back: **v0** is live."


def test_an_operator_confirms_the_assistants_proposal_under_their_name(tmp_path, auth):
    from tests.ui.test_tabs import _turn

    service = FakeService(tmp_path / "svc", turns=[_turn()])
    chat = ChatHandlers(service, PageImages(KnownSources(service)), auth=auth)
    with pytest.warns(UserWarning, match="sign-in has ended"):
        assert len(_drain(chat.approve([], "thread-1", "Wang", "", "en", _Req()))) == 1
    assert service.resumed == []
    _drain(chat.approve([], "thread-1", "", "", "en", _session(auth, "operator", "floor-tablet")))
    thread, decision, user = service.resumed[0]
    # conversations belong to the signed-in person: the service sees an owner-scoped id
    assert thread.startswith("p") and thread.endswith(":thread-1")
    assert decision.approved and decision.by == "key:floor-tablet" and user == "key:floor-tablet"
    _drain(chat.approve([], "thread-1", "", "", "en", _session(auth, "operator", "other-tablet")))
    assert service.resumed[1][0] != thread  # another person's session reaches another conversation


def test_open_page_handlers_take_the_typed_name(tmp_path):
    service = FakeService(tmp_path / "svc")
    open_auth = PageAuth(Authenticator.from_settings(_settings(tmp_path / "open", keys=[])))
    assert not open_auth.required
    OrderHandlers(service, open_auth).approve("WO-1", "Wang", "", "en", None)
    assert service.orders[0]["decided_by"] == "Wang"


# --- open mode ------------------------------------------------------------------------------------


def test_without_keys_the_page_is_open(site):
    client, _ = site(keys=[])
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    assert client.get("/ui/config").status_code == 200
    assert client.get("/ui-login", follow_redirects=False).headers["location"] == "/ui/"
    r = _sign_in(client, OPERATOR_KEY)
    assert r.status_code == 401 and "No API keys" in r.json()["msg"] and "set-cookie" not in r.headers


def test_serve_keeps_an_open_page_on_loopback(tmp_path):
    # The data home is a file: should the check ever let a start through, it fails at once instead of serving.
    (tmp_path / "home").write_text("not a folder")
    open_settings = _settings(tmp_path / "home", keys=[])
    with pytest.raises(OnsiteError, match="ONSITE_API_KEYS"):
        serve(open_settings, "0.0.0.0", 0, feed="off", echo=lambda _: None)
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.local", ""):
        assert not is_loopback(host)
        with pytest.raises(OnsiteError, match="--allow-open"):
            check_exposure(open_settings, host)
    for host in ("127.0.0.1", "::1", "localhost", "[::1]", "127.0.0.2"):
        assert is_loopback(host) and check_exposure(open_settings, host) == 0
    assert check_exposure(open_settings, "0.0.0.0", allow_open=True) == 0
    assert check_exposure(_settings(tmp_path / "h2", keys=[], allow_open=True), "0.0.0.0") == 0
    assert check_exposure(_settings(tmp_path / "h3"), "0.0.0.0") == 2


def test_the_cli_says_how_to_set_keys(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    (tmp_path / "home").write_text("not a folder")  # as above: never a real start
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ONSITE_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "--feed", "off"])
    assert result.exit_code == 1
    assert "ONSITE_API_KEYS" in result.output and "--allow-open" in result.output
