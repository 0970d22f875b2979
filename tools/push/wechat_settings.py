"""Settings of the WeChat subscribe-message channel: which template each kind of message uses, how a
message's fields fill the template's keys, who gets what by default. Plain pydantic (no I/O) so the
settings tree loads light. The app id, secret and WeChat's address are the login's
(``api.wechat_appid``, ``api.wechat_secret``, ``api.wechat_base_url``): one mini-program, one set.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["info", "warning", "alarm", "critical"]
KINDS: tuple[str, ...] = ("alert", "advice", "reminder")

# A template key is its value type and a number, as the console shows them: thing1, time2, number3 …
TEMPLATE_KEY = re.compile(r"^(thing|number|letter|symbol|character_string|time|date|amount|phone_number|car_number"
                          r"|name|phrase)(\d{1,2})$")
# Where a value comes from: a message field (title, body, target, severity, kind, created, key, link),
# one of the message's structured ``fields`` (e.g. value, limit, asset), or a constant "=text".
MESSAGE_FIELDS = ("title", "body", "target", "severity", "kind", "created", "key", "link")


class WeChatTemplate(BaseModel):
    """One subscribe-message template, as chosen in the mini-program's admin console."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$",
                    description="The template id (模板ID) from the admin console.")
    fields: dict[str, str] = Field(
        min_length=1, max_length=20,
        description="Template key → where its value comes from: a message field (title, body, target, severity, "
        "kind, created, key, link), a name in the message's structured fields (value, limit, asset …), or a "
        "constant '=text'. E.g. {\"thing1\": \"title\", \"time2\": \"created\", \"thing3\": \"target\", "
        "\"number4\": \"value\"}.")
    page: str = Field("", max_length=512, description="Mini-program page opened when a message has no link of its own.")

    @field_validator("fields")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key, source in v.items():
            if not TEMPLATE_KEY.match(key):
                raise ValueError(f"template key {key!r} is not a WeChat key (a type and a number: thing1, time2, "
                                 "number3, phrase4, character_string5 …)")
            if not source or len(source) > 64:
                raise ValueError(f"template key {key!r} needs a source field (1-64 characters)")
        return v


class WeChatPushSettings(BaseModel):
    """The WeChat channel of the push (``push.wechat``)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(False, description="Send subscribe messages to the mini-program's users (needs "
                          "api.wechat_appid / api.wechat_secret and at least one template).")
    templates: dict[Literal["alert", "advice", "reminder"], WeChatTemplate] = Field(
        default_factory=dict, description="The template of each kind of message; a kind without one is not sent "
        "on WeChat.")
    miniprogram_state: Literal["developer", "trial", "formal"] = Field(
        "formal", description="Which build of the mini-program a message opens: developer, trial or formal.")
    default_min_severity: Severity = Field(
        "alarm", description="Alerts below this severity are not sent to a user who has not chosen otherwise: "
        "each message spends one of the user's scarce one-time authorisations.")
    timezone: str | None = Field(None, description="Time zone of the times in messages (None: the site's).")
    token_api: Literal["stable_token", "token"] = Field(
        "stable_token", description="How the access token is fetched: POST /cgi-bin/stable_token (default: the "
        "secret travels in the body, and fetching does not cut off another backend of the same app) or the "
        "older GET /cgi-bin/token.")
    token_refresh_margin_s: int = Field(300, ge=0, le=3600, description="Fetch a new access token this long before "
                                        "the old one expires.")
    max_authorisations: int = Field(50, ge=1, le=1000, description="Most one-time authorisations counted per user "
                                    "and template (a client reporting 'accept' in a loop cannot pile up more).")
    reservation_ttl_s: int = Field(
        86400, ge=60, le=30 * 86400, description="An authorisation set aside for a message that is still not sent "
        "after this long goes back to the user (the send takes one again if it is still tried).")
    timeout_s: float = Field(10.0, gt=0, le=60, description="HTTP timeout of one call to WeChat.")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. Asia/Shanghai)") from None
        return v

    def template_kinds(self) -> dict[str, str]:
        """template id → the kind of message it carries."""
        return {t.id: kind for kind, t in self.templates.items()}
