"""Settings of push (``[push]`` in onsite.toml, ``ONSITE_PUSH__…`` in the environment): the outbox's
pace and retry policy, and the channels. Plain pydantic, nothing heavy (the settings tree loads
without the channels' code).

    [push]
    enabled = true
    [[push.webhooks]]
    name = "ops-relay"
    url = "https://relay.example/onsite"
    secret = "…"            # HMAC key; the receiver checks X-Onsite-Signature with it
    min_severity = "alarm"

or ``ONSITE_PUSH__WEBHOOKS='[{"name": "ops-relay", "url": "…", "secret": "…"}]'``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from tools.push.wechat_settings import WeChatPushSettings

SeverityName = Literal["info", "warning", "alarm", "critical"]
KindName = Literal["alert", "advice", "reminder"]


class BackoffSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_s: float = Field(5.0, gt=0, description="Delay before the first retry; it doubles with each failed attempt.")
    max_s: float = Field(1800.0, gt=0, description="Longest delay between two attempts (also caps Retry-After).")
    jitter: float = Field(0.2, ge=0, lt=1, description="Each delay is scaled by a random factor in 1 ± jitter, so "
                          "many messages held up by one outage do not all retry in the same second.")


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$", description="Short unique name; the channel "
                      "is called 'webhook:<name>' in the outbox, the admin view and /metrics.")
    url: str = Field(pattern=r"^https?://\S+$", max_length=2000, description="Where the JSON is POSTed.")
    secret: SecretStr = Field(description="Key of the HMAC-SHA256 signature (X-Onsite-Signature); at least 16 "
                              "characters. Never logged.")
    min_severity: SeverityName = Field("info", description="Only messages of this severity or worse.")
    kinds: list[KindName] = Field(default_factory=lambda: ["alert", "advice", "reminder"],
                                  description="Which kinds of message this webhook gets.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Connect + read timeout of one POST.")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("a webhook secret needs at least 16 characters (make one with: python -c "
                             "'import secrets; print(secrets.token_urlsafe(32))')")
        return v


class PushSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="Run the dispatcher in `onsite serve` (and `onsite watch`) when at "
                          "least one channel is configured.")
    interval_s: float = Field(1.0, gt=0, le=3600, description="Seconds between dispatcher passes (an alert reaches "
                              "a webhook within about this long, plus the send).")
    batch: int = Field(100, ge=1, le=1000, description="Messages taken from a source, and rows sent, per pass.")
    max_attempts: int = Field(12, ge=1, le=100, description="Attempts before a message is marked failed (kept, with "
                              "its last error; an admin can requeue it).")
    lease_s: float = Field(60.0, gt=0, description="A row being sent is not taken by another dispatcher (another "
                           "process) for this long; after a crash mid-send it is retried once this has passed.")
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    lang: Literal["zh", "en"] = Field("zh", description="Language of alert messages when the zone does not say.")
    webhooks: list[WebhookSettings] = Field(default_factory=list, description="Generic webhooks (HMAC-signed JSON).")
    wechat: WeChatPushSettings = Field(default_factory=WeChatPushSettings, description="WeChat subscribe messages to "
                                       "the mini-program's users (app id and secret: api.wechat_appid / wechat_secret).")

    @model_validator(mode="after")
    def _unique_names(self) -> "PushSettings":
        names = [w.name for w in self.webhooks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"push.webhooks: names must be unique ({', '.join(dup)} given twice)")
        return self
