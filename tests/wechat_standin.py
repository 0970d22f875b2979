"""A loopback stand-in of WeChat's server APIs for subscribe messages: ``POST /cgi-bin/stable_token``,
``GET /cgi-bin/token`` and ``POST /cgi-bin/message/subscribe/send``. It checks the app's credentials
and the access token, validates ``data`` values like WeChat (thing ≤ 20 characters, number digits,
phrase Chinese, time format), checks the template id and the page, and answers scripted openids
with WeChat's error codes:

    o-bad-openid → 40003   o-refused → 43101   o-busy → -1   o-limit → 45009   o-http-503 → HTTP 503
    o-slow → answers after 1 s (a client timeout)

``state.script[openid] = [code, …]`` answers the next sends to that openid with those codes first
(0 = deliver). ``state.revoke_tokens()`` makes every token issued so far invalid (40001).
Served by real uvicorn on a free loopback port (``serve``); the API tests' login stand-in mounts
the same routes (``add_push_routes``), so one server answers the login and the push.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

APPID = "wx0123456789abcdef"
APP_SECRET = "APPSECRET-do-not-leak-4b9e2c71d0"
TEMPLATES = ("TPL-alert-0123456789", "TPL-advice-0123456789", "TPL-reminder-012345")
SCRIPTED = {"o-bad-openid": 40003, "o-refused": 43101, "o-busy": -1, "o-limit": 45009}
_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]{1,5}$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$|^\d{1,2}:\d{2}$")


class QuietH11(H11Protocol):
    """No access log: it would print the secret and tokens the stand-in receives."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.access_log = False


@dataclass
class WeChatState:
    appid: str = APPID
    secret: str = APP_SECRET
    templates: tuple[str, ...] = TEMPLATES
    expires_in: int = 7200
    token_delay_s: float = 0.0  # a slow token answer (concurrent senders must still fetch once)
    tokens: dict[str, float] = field(default_factory=dict)  # token → expiry (monotonic)
    stable: str | None = None  # stable_token's current token
    token_fetches: list[dict[str, Any]] = field(default_factory=list)  # without the secret
    sent: list[dict[str, Any]] = field(default_factory=list)  # delivered bodies
    answers: list[tuple[str, int]] = field(default_factory=list)  # (openid, errcode) of every send
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.expires_in, self.token_delay_s, self.stable = 7200, 0.0, None
            for part in (self.tokens, self.script):
                part.clear()
            for part in (self.token_fetches, self.sent, self.answers):
                part.clear()

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def _issue(self) -> str:
        token = "ACCESS-" + secrets.token_hex(16)
        self.tokens[token] = time.monotonic() + self.expires_in
        return token


def _reply(payload: dict[str, Any], status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(json.dumps(payload, ensure_ascii=False), status_code=status, media_type="text/plain")


def _check_value(key: str, value: Any) -> str | None:
    """Why WeChat would refuse ``value`` for ``key`` (None: fine)."""
    if not isinstance(value, str) or not value:
        return "is empty"
    kind = re.sub(r"\d+$", "", key)
    if kind == "thing" and len(value) > 20:
        return "exceeds limit"
    if kind == "number" and (not _NUMBER.match(value) or sum(c.isdigit() for c in value) > 32):
        return "invalid"
    if kind == "phrase" and not _CJK.match(value):
        return "invalid"
    if kind in ("time", "date") and not _TIME.match(value):
        return "invalid"
    if kind in ("character_string", "letter") and len(value) > 32:
        return "exceeds limit"
    return None


def add_push_routes(app: FastAPI, state: WeChatState) -> None:
    def credentials_error(appid: str, secret: str, grant_type: str) -> PlainTextResponse | None:
        if appid != state.appid:
            return _reply({"errcode": 40013, "errmsg": "invalid appid"})
        if secret != state.secret:
            return _reply({"errcode": 40125, "errmsg": "invalid appsecret"})
        if grant_type != "client_credential":
            return _reply({"errcode": 40002, "errmsg": "invalid grant_type"})
        return None

    @app.get("/cgi-bin/token")
    def token(grant_type: str = "", appid: str = "", secret: str = "") -> PlainTextResponse:
        time.sleep(state.token_delay_s)
        with state.lock:
            state.token_fetches.append({"api": "token", "appid": appid})
            if (refused := credentials_error(appid, secret, grant_type)) is not None:
                return refused
            return _reply({"access_token": state._issue(), "expires_in": state.expires_in})

    @app.post("/cgi-bin/stable_token")
    async def stable_token(request: Request) -> PlainTextResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _reply({"errcode": 47001, "errmsg": "data format error"})
        await asyncio.sleep(state.token_delay_s)
        with state.lock:
            force = bool(body.get("force_refresh"))
            state.token_fetches.append({"api": "stable_token", "appid": body.get("appid"), "force_refresh": force})
            if (refused := credentials_error(str(body.get("appid", "")), str(body.get("secret", "")),
                                             str(body.get("grant_type", "")))) is not None:
                return refused
            # normal mode: the same token while WeChat still holds it valid
            if force or state.stable is None or state.tokens.get(state.stable, 0) <= time.monotonic():
                state.stable = state._issue()
            left = int(state.tokens[state.stable] - time.monotonic())
            return _reply({"access_token": state.stable, "expires_in": max(left, 1)})

    @app.post("/cgi-bin/message/subscribe/send")
    async def send(request: Request, access_token: str = "") -> PlainTextResponse:
        raw = await request.body()
        with state.lock:
            if state.tokens.get(access_token, 0) <= time.monotonic():
                code = 42001 if access_token in state.tokens else 40001
                return _reply({"errcode": code, "errmsg": "invalid credential, access_token is invalid or not latest"})
            try:
                body = json.loads(raw)
            except ValueError:
                return _reply({"errcode": 47001, "errmsg": "data format error"})
            openid = str(body.get("touser", ""))

            def answer(code: int, errmsg: str = "") -> PlainTextResponse:
                state.answers.append((openid, code))
                if code == 0:
                    state.sent.append(body)
                    return _reply({"errcode": 0, "errmsg": "ok", "msgid": 2_000_000_000 + len(state.sent)})
                if not errmsg:
                    errmsg = "argument invalid! data.thing1.value exceeds limit" if code == 47003 else f"error {code}"
                return _reply({"errcode": code, "errmsg": errmsg})

            if state.script.get(openid):
                code = state.script[openid].pop(0)
                if 500 <= code < 600:  # an HTTP status, not an errcode
                    state.answers.append((openid, code))
                    return PlainTextResponse("<html>bad gateway</html>", status_code=code)
                if code:
                    return answer(code)
            elif openid == "o-http-503":
                state.answers.append((openid, 503))
                return PlainTextResponse("<html>service unavailable</html>", status_code=503)
            elif openid in SCRIPTED:
                return answer(SCRIPTED[openid])
            if not openid.startswith("o-"):
                return answer(40003, "invalid openid")
            if body.get("template_id") not in state.templates:
                return answer(40037, "invalid template_id")
            page = body.get("page", "")
            if page and not re.match(r"^pages/[A-Za-z0-9_/]+(\?[^\s]*)?$", page):
                return answer(41030, "invalid page")
            if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
                return answer(47003, "argument invalid! miniprogram_state invalid")
            if body.get("lang", "zh_CN") not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
                return answer(47003, "argument invalid! lang invalid")
            data = body.get("data")
            if not isinstance(data, dict) or not data:
                return answer(47003, "argument invalid! data is empty")
            for key, wrapped in data.items():
                why = _check_value(key, wrapped.get("value") if isinstance(wrapped, dict) else None)
                if why:
                    return answer(47003, f"argument invalid! data.{key}.value {why}")
        if openid == "o-slow":
            await asyncio.sleep(1.0)
        with state.lock:
            return answer(0)


def standin_app(state: WeChatState) -> FastAPI:
    app = FastAPI()
    add_push_routes(app, state)
    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Runs ``app`` under uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", http=QuietH11)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stand-in WeChat server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
