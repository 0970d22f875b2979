"""The one table of push channel kinds (kind → factory from the push settings), and the dispatcher
``onsite serve`` and ``onsite watch`` run: the outbox at ``settings.push_db``, the alert source,
the configured channels. Another channel kind is one more entry in ``FACTORIES``."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from tools.push.channel import Channel, MessageSource
from tools.push.settings import PushSettings


def _webhooks(push: PushSettings, **deps: Any) -> list[Channel]:
    from tools.push.webhook import WebhookChannel

    return [WebhookChannel(w) for w in push.webhooks]


def _wechat(push: PushSettings, *, settings: Any = None, site: Any = None, **deps: Any) -> list[Channel]:
    """WeChat subscribe messages; the app id, secret and WeChat's address are the login's (``api.*``)."""
    if not push.wechat.enabled or settings is None:
        return []
    from tools.push.wechat_subscribe import make_wechat_channel

    channel = make_wechat_channel(push.wechat, settings.api.wechat_appid, settings.api.wechat_secret,
                                  settings.api.wechat_base_url, settings.home,
                                  timezone=getattr(site, "timezone", None) or "UTC")
    return [channel] if channel is not None else []


# kind → factory(push settings, **deps) → the channels of that kind (none when not configured)
FACTORIES: dict[str, Callable[..., list[Channel]]] = {
    "webhook": _webhooks,
    "wechat": _wechat,
}


def build_channels(push: PushSettings, **deps: Any) -> list[Channel]:
    """Every configured channel, in FACTORIES order."""
    return [channel for factory in FACTORIES.values() for channel in factory(push, **deps)]


def build_push(settings: Any, alert_store: Any, site: Any = None, *, sources: Sequence[MessageSource] = (),
               **deps: Any):
    """The dispatcher for ``settings`` (the root Settings) over ``alert_store`` (and any further
    ``sources``, e.g. the daily advice), or None when push is off or no channel is configured. The
    caller runs it (``PushThread``) and stops it; ``deps`` go to the channel factories."""
    from tools.push.alert_source import AlertSource
    from tools.push.dispatcher import Dispatcher
    from tools.push.outbox import Outbox

    push: PushSettings = settings.push
    if not push.enabled:
        return None
    channels = build_channels(push, settings=settings, site=site, **deps)
    if not channels:
        return None
    every = [AlertSource(alert_store, site, default_lang=push.lang, batch=push.batch), *sources]
    return Dispatcher(Outbox(settings.push_db), every, channels, push)
