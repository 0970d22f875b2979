"""Fixtures of the push tests: the WeChat stand-in (real uvicorn on a loopback port, one per
session, its state reset per test) and a factory of WeChat channels in a temp data home."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.wechat_standin import APP_SECRET, APPID, TEMPLATES, WeChatState, serve, standin_app
from tools.push.wechat_settings import WeChatPushSettings
from tools.push.wechat_subscribe import WeChatSubscribeChannel, make_wechat_channel

ALERT_FIELDS = {"thing1": "title", "time2": "created", "thing3": "target", "number4": "value", "phrase5": "severity"}
ADVICE_FIELDS = {"thing1": "title", "time2": "created", "thing3": "target"}


class WeChat:
    def __init__(self, url: str, state: WeChatState):
        self.url, self.state = url, state


@pytest.fixture(scope="session")
def _wechat_standin() -> Iterator[WeChat]:
    state = WeChatState()
    with serve(standin_app(state)) as url:
        yield WeChat(url, state)


@pytest.fixture
def wechat(_wechat_standin: WeChat) -> WeChat:
    _wechat_standin.state.reset()
    return _wechat_standin


def push_settings(**overrides: Any) -> WeChatPushSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "templates": {"alert": {"id": TEMPLATES[0], "fields": ALERT_FIELDS, "page": "pages/alerts/index"},
                      "advice": {"id": TEMPLATES[1], "fields": ADVICE_FIELDS}},
        "miniprogram_state": "trial",
        "timezone": "Asia/Shanghai",
        "timeout_s": 1.0,
    }
    values.update(overrides)
    return WeChatPushSettings(**values)


@pytest.fixture
def make_channel(wechat: WeChat, tmp_path: Path) -> Iterator[Callable[..., WeChatSubscribeChannel]]:
    made: list[WeChatSubscribeChannel] = []

    def make(home: Path | None = None, *, secret: str = APP_SECRET, base_url: str | None = None,
             **overrides: Any) -> WeChatSubscribeChannel:
        channel = make_wechat_channel(push_settings(**overrides), APPID, secret, base_url or wechat.url,
                                      home or tmp_path / "home")
        assert channel is not None
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()
