"""WeChat mini-program login: exchange a ``wx.login`` code for the user's openid through
``GET <base>/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code``.

The ``session_key`` WeChat returns is dropped on the spot: it is never returned, stored or logged,
and neither is the app secret (httpx's request log line, which carries the query string, is
redacted). WeChat's error codes become clear messages with the right HTTP status.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from assistant.errors import OnsiteError
from assistant.settings import ApiSettings
from tools.http_redaction import install_redaction

log = logging.getLogger("onsite.api.wechat")

JSCODE2SESSION_PATH = "/sns/jscode2session"

install_redaction()  # the secret, the login code and the session key never reach the log


class WeChatLoginError(OnsiteError):
    """WeChat refused the login code or could not be asked."""

    def __init__(self, message: str, *, http_status: int, kind: str, errcode: int | None = None,
                 retry_after_s: float | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.error_kind = kind
        self.errcode = errcode
        self.retry_after_s = retry_after_s
        self.error_data = {"wechat_errcode": errcode} if errcode is not None else {}


# errcode → (HTTP status, kind, message, Retry-After)
ERRCODES: dict[int, tuple[int, str, str, float | None]] = {
    40029: (401, "wechat_invalid_code", "The WeChat login code is invalid or has expired; call wx.login again.", None),
    40163: (401, "wechat_code_used", "The WeChat login code was already used; call wx.login again.", None),
    45011: (429, "wechat_rate_limited", "Too many login attempts; wait a minute and try again.", 60.0),
    40226: (403, "wechat_high_risk_user", "WeChat flagged this account as high-risk; sign-in is refused.", None),
    -1: (503, "wechat_busy", "WeChat is busy; try again in a few seconds.", 5.0),
}
_MISCONFIGURED = {40013, 40125, 41002, 41004, 40002}  # bad appid / secret / grant type


@dataclass(frozen=True)
class WeChatIdentity:
    """What we keep from a successful login: no session_key."""

    openid: str
    unionid: str | None = None


class WeChatClient:
    def __init__(self, appid: str | None, secret: SecretStr | str | None, base_url: str = "https://api.weixin.qq.com",
                 timeout_s: float = 10.0):
        self.appid = appid
        self._secret = secret if isinstance(secret, SecretStr) or secret is None else SecretStr(secret)
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"wechat_base_url must be http(s), not {base_url!r}")

    @classmethod
    def from_settings(cls, api: ApiSettings) -> "WeChatClient":
        return cls(api.wechat_appid, api.wechat_secret, api.wechat_base_url, api.wechat_timeout_s)

    @property
    def configured(self) -> bool:
        return bool(self.appid and self._secret and self._secret.get_secret_value())

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self.appid!r}, base_url={self.base_url!r})"

    def code2session(self, code: str) -> WeChatIdentity:
        """The openid behind a ``wx.login`` code, or ``WeChatLoginError``."""
        if not self.configured:
            raise WeChatLoginError("WeChat login is not set up on this server (wechat_appid / wechat_secret).",
                                   http_status=503, kind="wechat_not_configured")
        assert self._secret is not None
        params = {"appid": self.appid, "secret": self._secret.get_secret_value(), "js_code": code,
                  "grant_type": "authorization_code"}
        try:
            with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
                response = client.get(self.base_url + JSCODE2SESSION_PATH, params=params)
        except httpx.TimeoutException:
            log.warning("WeChat jscode2session timed out after %.1f s", self.timeout_s)
            raise WeChatLoginError("WeChat did not answer in time; try again.", http_status=503,
                                   kind="wechat_unreachable", retry_after_s=5.0) from None
        except httpx.HTTPError as exc:
            log.warning("WeChat jscode2session unreachable: %s", type(exc).__name__)
            raise WeChatLoginError("WeChat cannot be reached from this server; try again later.", http_status=503,
                                   kind="wechat_unreachable", retry_after_s=5.0) from None
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> WeChatIdentity:
        try:
            payload = json.loads(response.text)  # WeChat answers JSON labelled text/plain
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("WeChat jscode2session answered HTTP %d with something that is not JSON", response.status_code)
            raise WeChatLoginError("WeChat answered the login unexpectedly; try again later.", http_status=502,
                                   kind="wechat_bad_response") from None
        errcode = payload.get("errcode")
        try:
            errcode = int(errcode) if errcode is not None else 0
        except (TypeError, ValueError):
            errcode = -2
        if errcode != 0:
            errmsg = str(payload.get("errmsg", ""))[:200]
            if errcode in ERRCODES:
                status, kind, message, retry = ERRCODES[errcode]
                log.info("WeChat login refused: errcode %d (%s)", errcode, errmsg)
                raise WeChatLoginError(message, http_status=status, kind=kind, errcode=errcode, retry_after_s=retry)
            if errcode in _MISCONFIGURED:
                log.error("WeChat rejects our app credentials: errcode %d (%s); check wechat_appid / wechat_secret",
                          errcode, errmsg)
                raise WeChatLoginError("WeChat login is misconfigured on this server; tell the operator.",
                                       http_status=503, kind="wechat_misconfigured", errcode=errcode)
            log.warning("WeChat login failed: errcode %d (%s)", errcode, errmsg)
            raise WeChatLoginError(f"WeChat login failed (errcode {errcode}).", http_status=502,
                                   kind="wechat_login_failed", errcode=errcode)
        openid = payload.get("openid")
        if not isinstance(openid, str) or not openid or len(openid) > 128:
            log.warning("WeChat jscode2session answered without an openid (HTTP %d)", response.status_code)
            raise WeChatLoginError("WeChat answered the login unexpectedly; try again later.", http_status=502,
                                   kind="wechat_bad_response")
        unionid = payload.get("unionid")
        return WeChatIdentity(openid=openid, unionid=unionid if isinstance(unionid, str) else None)
