"""The WeChat channel of the push: subscribe messages to the mini-program's users
(``POST <base>/cgi-bin/message/subscribe/send?access_token=…``).

``recipients(message)`` sets one of each user's one-time authorisations aside for the message (the
users who have one for the template of ``message.kind`` and whose preference it passes: alerts
below their minimum severity, or about assets they do not follow, do not spend one).
``send(message, openid)`` builds ``data`` through the settings' field map (values made to fit
WeChat's rules first, ``wechat_values``), sends, and settles the authorisation by WeChat's answer:

    0                    ok: spent
    40001 42001 40014    token refused: a new token, sent once more; still refused → retry later
    -1 45009 HTTP 5xx    WeChat busy / over its limit / down, or no answer: retry later (kept aside)
    40003                bad openid: failed, given back, the user left out until they subscribe again
    43101                the user refused / has none: failed, their count set to 0
    40037                bad template id: failed, given back; the operator is told (an error in the log)
    47003                a value WeChat refused: failed with the key, given back
    41030                bad page: failed, given back; the operator is told
    other                failed, given back

``send`` never raises: every outcome is a ``Delivery`` and a row in the sends table.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tools.push.channel import Delivery, PushMessage
from tools.push.subscriptions import SubscriptionStore
from tools.push.wechat_settings import WeChatPushSettings
from tools.push.wechat_token import INVALID_TOKEN_CODES, AccessTokenCache, WeChatTokenError
from tools.push.wechat_values import TemplateValueError, template_data

log = logging.getLogger("onsite.push.wechat")

SEND_PATH = "/cgi-bin/message/subscribe/send"
SUBSCRIPTIONS_FILE = "wechat_subscriptions.sqlite"
TOKEN_FILE = "wechat_access_token.json"
RETRY_CODES = frozenset({-1, 45009, 45047})  # busy, API over its daily limit, too many messages at once
LANGS = {"zh": "zh_CN", "en": "en_US", "zh_CN": "zh_CN", "en_US": "en_US", "zh_HK": "zh_HK", "zh_TW": "zh_TW"}
# errcode → (Delivery.error, how the authorisation is settled, an operator problem?)
FINAL: dict[int, tuple[str, str, bool]] = {
    40003: ("wechat_40003_bad_openid", "bad_openid", False),
    43101: ("wechat_43101_refused", "refused", False),
    40037: ("wechat_40037_bad_template", "refund", True),
    47003: ("wechat_47003_bad_value", "refund", False),
    41030: ("wechat_41030_bad_page", "refund", True),
}
_FIELD_IN_ERRMSG = re.compile(r"data\.([a-z_]+\d+)")


class WeChatSubscribeChannel:
    """Implements ``tools.push.channel.Channel``."""

    name = "wechat"

    def __init__(self, settings: WeChatPushSettings, tokens: AccessTokenCache, store: SubscriptionStore,
                 base_url: str, *, timezone: str = "UTC", client: httpx.Client | None = None):
        self.settings, self.tokens, self.store = settings, tokens, store
        self.base_url = base_url.rstrip("/")
        self.tz = ZoneInfo(settings.timezone or timezone)
        self._client = client or httpx.Client(timeout=settings.timeout_s, follow_redirects=False)
        self._own_client = client is None
        self._operator_told: set[tuple[int, str]] = set()

    def __repr__(self) -> str:
        return f"WeChatSubscribeChannel(base_url={self.base_url!r}, kinds={sorted(self.settings.templates)})"

    def close(self) -> None:
        if self._own_client:
            self._client.close()
        self.tokens.close()
        self.store.close()

    # --- Channel ------------------------------------------------------------------------------

    def recipients(self, message: PushMessage) -> list[str]:
        template = self.settings.templates.get(message.kind)
        if not self.settings.enabled or template is None:
            return []
        return self.store.reserve(message.key, template.id, message.kind, message.severity, message.target,
                                  self._default_min(message.kind))

    def send(self, message: PushMessage, recipient: str) -> Delivery:
        template = self.settings.templates.get(message.kind)
        if template is None:
            return Delivery(False, error="wechat_no_template", detail={"kind": message.kind})
        try:
            delivery, errcode = self._send(message, recipient, template.id)
        except Exception as exc:  # noqa: BLE001 - a bug here must not take the outbox down; the message waits
            log.exception("WeChat send of %s failed unexpectedly", message.key)
            delivery, errcode = Delivery(False, retry=True, error="wechat_internal",
                                         detail={"exception": type(exc).__name__}), None
        try:
            self.store.record_send(message.key, recipient, template.id, ok=delivery.ok, retry=delivery.retry,
                                   errcode=errcode, error=delivery.error, detail=delivery.detail)
        except Exception:  # noqa: BLE001 - the Delivery still tells the outbox what happened
            log.exception("could not record the WeChat send of %s", message.key)
        return delivery

    # --- the send -------------------------------------------------------------------------------

    def _default_min(self, kind: str) -> str:
        return self.settings.default_min_severity if kind == "alert" else "info"

    def _send(self, message: PushMessage, openid: str, template_id: str) -> tuple[Delivery, int | None]:
        base = {"template_id": template_id, "kind": message.kind}
        template = self.settings.templates[message.kind]
        try:
            data = template_data(template, message, self.tz)
        except TemplateValueError as exc:  # WeChat would refuse it: not sent, the authorisation given back
            log.warning("WeChat message %s not sent: %s", message.key, exc)
            self.store.settle(message.key, openid, template_id, "refund")
            return Delivery(False, error="wechat_bad_value", detail={**base, "field": exc.key, "reason": str(exc)}), None
        taken = self.store.take(message.key, openid, template_id)
        if taken == "spent":
            return Delivery(True, detail={**base, "already_sent": True}), None
        if taken == "none":
            return Delivery(False, error="wechat_no_authorisation", detail=base), None
        body = {"touser": openid, "template_id": template_id, "page": message.link or template.page, "data": data,
                "miniprogram_state": self.settings.miniprogram_state, "lang": LANGS.get(message.lang, "zh_CN")}
        errcode, errmsg, answer = None, "", {}
        for attempt in (1, 2):
            try:
                token = self.tokens.get()
            except WeChatTokenError as exc:  # kept aside: the outbox tries again later
                return Delivery(False, retry=True, error=exc.code, detail={**base, "reason": str(exc)}), exc.errcode
            errcode, errmsg, answer = self._post(token, body)
            if errcode in INVALID_TOKEN_CODES:
                self.tokens.invalidate(token)
                if attempt == 1:
                    continue  # once more with a new token
            break
        detail = {**base, **answer}
        if errcode == 0:
            self.store.settle(message.key, openid, template_id, "spent")
            return Delivery(True, detail=detail), 0
        if errcode is None or errcode in RETRY_CODES or errcode in INVALID_TOKEN_CODES:
            self.store.settle(message.key, openid, template_id, "keep")
            error = answer.get("error") or f"wechat_{errcode}"
            return Delivery(False, retry=True, error=error, detail=detail), errcode
        error, outcome, operator = FINAL.get(errcode, (f"wechat_{errcode}", "refund", False))
        if errcode == 47003:
            found = _FIELD_IN_ERRMSG.search(errmsg)
            detail["field"] = found.group(1) if found else None
        self.store.settle(message.key, openid, template_id, outcome, errcode=errcode, message=message.key)
        self._tell(errcode, template_id, errmsg, operator)
        return Delivery(False, error=error, detail=detail), errcode

    def _post(self, token: str, body: dict[str, Any]) -> tuple[int | None, str, dict[str, Any]]:
        """(errcode or None when there is no answer to read, errmsg, what to record)."""
        try:
            response = self._client.post(self.base_url + SEND_PATH, params={"access_token": token},
                                         content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                         headers={"Content-Type": "application/json"})
        except httpx.TimeoutException as exc:  # it may have arrived; WeChat has no idempotency key, so a retry
            # may meet 43101 (the authorisation was used) and is recorded as refused: count 0 is right either way
            log.warning("WeChat subscribe/send timed out (%s)", type(exc).__name__)
            return None, "", {"error": "wechat_timeout"}
        except httpx.HTTPError as exc:
            log.warning("WeChat subscribe/send unreachable: %s", type(exc).__name__)
            return None, "", {"error": "wechat_unreachable"}
        if response.status_code >= 500:
            return None, "", {"error": f"http_{response.status_code}"}
        try:
            payload = json.loads(response.text)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
            errcode = int(payload.get("errcode", 0))
        except (ValueError, TypeError):
            log.warning("WeChat subscribe/send answered HTTP %d with something that is not JSON", response.status_code)
            return None, "", {"error": f"http_{response.status_code}_not_json"}
        errmsg = str(payload.get("errmsg", ""))[:300]
        answer: dict[str, Any] = {"errcode": errcode, "errmsg": errmsg}
        if "msgid" in payload:
            answer["msgid"] = str(payload["msgid"])
        return errcode, errmsg, answer

    def _tell(self, errcode: int, template_id: str, errmsg: str, operator: bool) -> None:
        """An operator's problem (template id, page) is an error in the log, once per code and template;
        the users' own are info."""
        if not operator:
            log.info("WeChat refused a subscribe message: errcode %d (%s)", errcode, errmsg)
            return
        if (errcode, template_id) in self._operator_told:
            log.warning("WeChat refused a subscribe message again: errcode %d (%s)", errcode, errmsg)
            return
        self._operator_told.add((errcode, template_id))
        what = "the template id" if errcode == 40037 else "the page"
        log.error("WeChat refuses %s of subscribe messages: errcode %d (%s); check push.wechat.templates (template "
                  "%s) in the settings", what, errcode, errmsg, template_id)


def make_wechat_channel(settings: WeChatPushSettings, appid: str | None, secret: Any, base_url: str, home: Path, *,
                        timezone: str = "UTC") -> WeChatSubscribeChannel | None:
    """The channel, or None when it is off or cannot work (no app id / secret / templates: said in the log).
    ``secret`` may be a pydantic ``SecretStr``; ``timezone`` is the site's (``settings.timezone`` wins)."""
    if not settings.enabled:
        return None
    secret_value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
    if not appid or not secret_value:
        log.warning("WeChat push is enabled but api.wechat_appid / api.wechat_secret are not set: not sending")
        return None
    if not settings.templates:
        log.warning("WeChat push is enabled but push.wechat.templates names no template: not sending")
        return None
    home = Path(home)
    tokens = AccessTokenCache(appid, str(secret_value), base_url, home / TOKEN_FILE, api=settings.token_api,
                              margin_s=settings.token_refresh_margin_s, timeout_s=settings.timeout_s)
    store = open_subscriptions(settings, home)
    return WeChatSubscribeChannel(settings, tokens, store, base_url, timezone=timezone)


def open_subscriptions(settings: WeChatPushSettings, home: Path) -> SubscriptionStore:
    return SubscriptionStore(Path(home) / SUBSCRIPTIONS_FILE, max_authorisations=settings.max_authorisations,
                             reservation_ttl_s=settings.reservation_ttl_s)
