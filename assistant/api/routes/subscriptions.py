"""/api/v1/push: a mini-program user's WeChat subscribe-message authorisations and preferences.

After ``wx.requestSubscribeMessage`` the mini-program posts what its ``success`` callback got
(``{"errMsg": "requestSubscribeMessage:ok", "<template id>": "accept" | "reject" | "ban" |
"filter", …}``) as ``results``: each "accept" allows the server one message of that template
(``tools.push.subscriptions``). The user's preferences decide which messages spend them: alerts
from ``min_severity`` up (default ``push.wechat.default_min_severity``, alarm), about the assets
and zones in ``targets`` (null: all).

Only a WeChat sign-in has an openid to send to: other callers get 403 ``wechat_user_required``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.app import api_router
from assistant.api.auth import CurrentPrincipal, Principal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.errors import OnsiteError
from tools.push.subscriptions import SubscriptionStore
from tools.push.wechat_settings import KINDS, WeChatPushSettings
from tools.push.wechat_subscribe import open_subscriptions

router = api_router(tags=["push"], responses=error_responses(401, 403))
Severity = Literal["info", "warning", "alarm", "critical"]
Kind = Literal["alert", "advice", "reminder"]
WX_RESULT_KEYS = {"errMsg", "errCode"}  # what wx.requestSubscribeMessage's success adds besides the results


class WeChatUserRequiredError(OnsiteError):
    http_status = 403
    error_kind = "wechat_user_required"


class UnknownTemplateError(OnsiteError):
    http_status = 422
    error_kind = "unknown_template"

    def __init__(self, message: str, unknown: list[str], known: dict[str, str]):
        super().__init__(message)
        self.error_data = {"unknown": unknown, "known": known}


class SubscribeResultsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: dict[str, str] = Field(
        max_length=20, description="What wx.requestSubscribeMessage's success callback got: template id → "
        "accept | reject | ban | filter (errMsg is ignored).")
    report_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$",
                                  description="Optional: the same id sent again (a retried request) counts once.")


class KindPreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_severity: Severity | None = Field(None, description="Messages from this severity up (alerts; default: the "
                                          "server's push.wechat.default_min_severity).")
    targets: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(None, max_length=200, description="Only about these assets / zones (null: all).")


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert: KindPreferenceIn | None = None
    advice: KindPreferenceIn | None = None
    reminder: KindPreferenceIn | None = None


class KindSubscriptionOut(BaseModel):
    template_id: str | None = Field(description="The template of this kind (null: not sent on WeChat).")
    remaining: int = Field(description="Messages of this kind the server may still send you.")
    pending: int = Field(description="Set aside for messages being sent now.")


class PreferenceOut(BaseModel):
    min_severity: Severity
    targets: list[str] | None


class SubscriptionsOut(BaseModel):
    openid_ok: bool = Field(description="False after WeChat called the openid invalid, until you subscribe again.")
    subscriptions: dict[str, KindSubscriptionOut]
    preferences: dict[str, PreferenceOut]


def wechat_push_settings(request: Request) -> WeChatPushSettings:
    """``push.wechat`` of the settings (an app may set ``app.state.wechat_push_settings`` instead)."""
    state = request.app.state
    given = getattr(state, "wechat_push_settings", None)
    if given is not None:
        return given
    push = getattr(state.settings, "push", None)
    return getattr(push, "wechat", None) or WeChatPushSettings()


def subscription_store(request: Request) -> SubscriptionStore:
    state = request.app.state
    store = getattr(state, "wechat_subscriptions", None)
    if store is None:
        store = state.wechat_subscriptions = open_subscriptions(wechat_push_settings(request), state.settings.home)
    return store


def _openid(principal: Principal) -> str:
    if principal.via != "wechat" or not principal.id.startswith("wx:"):
        raise WeChatUserRequiredError("Subscribe messages go to WeChat users: sign in with the mini-program "
                                      "(POST /api/v1/auth/wechat/login).")
    return principal.id[3:]


def _view(store: SubscriptionStore, settings: WeChatPushSettings, openid: str) -> SubscriptionsOut:
    counts = store.remaining(openid)
    subs, prefs = {}, {}
    for kind in KINDS:
        template = settings.templates.get(kind)
        held = counts.get(template.id, {}) if template else {}
        subs[kind] = KindSubscriptionOut(template_id=template.id if template else None,
                                         remaining=held.get("remaining", 0), pending=held.get("pending", 0))
        default = settings.default_min_severity if kind == "alert" else "info"
        prefs[kind] = PreferenceOut(**store.preference(openid, kind, default).to_dict())
    return SubscriptionsOut(openid_ok=store.user_state(openid)["bad_openid_at"] is None, subscriptions=subs,
                            preferences=prefs)


@router.post("/push/subscriptions", response_model=Envelope[SubscriptionsOut], responses=error_responses(422),
             summary="Report what the user chose in wx.requestSubscribeMessage")
async def report(request: Request, principal: CurrentPrincipal, body: SubscribeResultsIn) -> Any:
    openid = _openid(principal)
    settings, store = wechat_push_settings(request), subscription_store(request)
    known = settings.template_kinds()
    results = {k: v for k, v in body.results.items() if k not in WX_RESULT_KEYS}
    if not results:
        raise UnknownTemplateError("The report names no template.", [], known)
    unknown = sorted(k for k in results if k not in known)
    if unknown:
        raise UnknownTemplateError(f"Unknown template id(s): {', '.join(u[:64] for u in unknown[:5])}; this server "
                                   f"sends {', '.join(known) or 'no template'}.", unknown[:20], known)
    bad = sorted({v for v in results.values() if v not in ("accept", "reject", "ban", "filter")})
    if bad:
        raise UnknownTemplateError(f"A result is accept, reject, ban or filter, not {bad[0][:40]!r}.", [], known)

    def record() -> SubscriptionsOut:
        store.record_results(openid, results, report_id=body.report_id)
        return _view(store, settings, openid)

    return ok(await run_in_threadpool(record))


@router.get("/push/subscriptions", response_model=Envelope[SubscriptionsOut],
            summary="The user's remaining messages per kind, and preferences")
async def mine(request: Request, principal: CurrentPrincipal) -> Any:
    openid = _openid(principal)
    settings, store = wechat_push_settings(request), subscription_store(request)
    return ok(await run_in_threadpool(_view, store, settings, openid))


@router.put("/push/preferences", response_model=Envelope[SubscriptionsOut], responses=error_responses(422),
            summary="Which messages spend the user's authorisations (per kind; kinds left out are unchanged)")
async def preferences(request: Request, principal: CurrentPrincipal, body: PreferencesIn) -> Any:
    openid = _openid(principal)
    settings, store = wechat_push_settings(request), subscription_store(request)

    def save() -> SubscriptionsOut:
        for kind in KINDS:
            pref: KindPreferenceIn | None = getattr(body, kind)
            if pref is None:
                continue
            default = settings.default_min_severity if kind == "alert" else "info"
            targets = None if pref.targets is None else [t.strip() for t in pref.targets if t.strip()][:200]
            store.set_preference(openid, kind, pref.min_severity or default, targets)
        return _view(store, settings, openid)

    return ok(await run_in_threadpool(save))


def install(app: FastAPI) -> None:
    app.include_router(router)
