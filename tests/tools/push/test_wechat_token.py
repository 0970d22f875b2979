"""The access token against the stand-in: fetched once and reused (across sends, threads and a
restart), renewed before it expires, replaced when WeChat refuses it, kept 0600, never logged."""

from __future__ import annotations

import json
import logging
import stat
import threading

import pytest

from tests.wechat_standin import APP_SECRET, APPID
from tools.push.wechat_token import AccessTokenCache, WeChatTokenError


class Clock:
    def __init__(self, now: float = 1_796_711_400.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cache_file(tmp_path):
    return tmp_path / "home" / "wechat_access_token.json"


def make(wechat, cache_file, **kwargs) -> AccessTokenCache:
    kwargs.setdefault("margin_s", 300)
    return AccessTokenCache(APPID, kwargs.pop("secret", APP_SECRET), wechat.url, cache_file, **kwargs)


def test_fetched_once_and_reused_and_kept_0600(wechat, cache_file):
    tokens = make(wechat, cache_file)
    first = tokens.get()
    assert [tokens.get() for _ in range(5)] == [first] * 5
    assert len(wechat.state.token_fetches) == 1 and tokens.fetches == 1
    assert wechat.state.token_fetches[0] == {"api": "stable_token", "appid": APPID, "force_refresh": False}
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    kept = json.loads(cache_file.read_text())
    assert kept["access_token"] == first and APP_SECRET not in cache_file.read_text()


def test_a_restart_reuses_the_token_on_disk(wechat, cache_file):
    first = make(wechat, cache_file).get()
    again = make(wechat, cache_file)  # a new process on the same data home
    assert again.get() == first
    assert len(wechat.state.token_fetches) == 1 and again.fetches == 0


def test_a_token_of_another_app_or_server_on_disk_is_not_used(wechat, cache_file):
    make(wechat, cache_file).get()
    data = json.loads(cache_file.read_text())
    cache_file.write_text(json.dumps({**data, "appid": "wx-other-app"}))
    make(wechat, cache_file).get()
    cache_file.write_text("{not json")
    make(wechat, cache_file).get()
    assert len(wechat.state.token_fetches) == 3


def test_renewed_before_it_expires(wechat, cache_file):
    clock = Clock()
    tokens = make(wechat, cache_file, clock=clock, api="token")
    first = tokens.get()
    clock.now += 7200 - 301  # still more than the margin left
    assert tokens.get() == first and len(wechat.state.token_fetches) == 1
    clock.now += 2  # inside the margin: a new one before WeChat's expires
    second = tokens.get()
    assert second != first and len(wechat.state.token_fetches) == 2
    assert wechat.state.token_fetches[-1]["api"] == "token"
    # the restart sees the renewed token on disk
    assert make(wechat, cache_file, clock=clock, api="token").get() == second


def test_a_refused_token_is_replaced_and_a_force_refresh_only_when_wechat_insists(wechat, cache_file):
    tokens = make(wechat, cache_file)
    first = tokens.get()
    wechat.state.revoke_tokens()  # WeChat no longer honours it; stable_token hands out a new one
    tokens.invalidate(first)
    second = tokens.get()
    assert second != first
    assert [f["force_refresh"] for f in wechat.state.token_fetches] == [False, False]
    tokens.invalidate(second)  # WeChat refused a token it still holds valid (another backend forced a new one …)
    third = tokens.get()
    assert third != second
    assert [f["force_refresh"] for f in wechat.state.token_fetches] == [False, False, False, True]
    assert make(wechat, cache_file).get() == third  # the disk has the new one


def test_concurrent_callers_wait_for_one_fetch(wechat, cache_file):
    wechat.state.token_delay_s = 0.3
    tokens = make(wechat, cache_file)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(tokens.get())) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(got) == 10 and len(set(got)) == 1
    assert len(wechat.state.token_fetches) == 1


def test_two_caches_on_one_home_fetch_once(wechat, cache_file):
    """The server and ``onsite watch`` share the data home: the file lock makes one refresher."""
    wechat.state.token_delay_s = 0.3
    a, b = make(wechat, cache_file), make(wechat, cache_file)
    got: list[str] = []
    threads = [threading.Thread(target=lambda c=c: got.append(c.get())) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(set(got)) == 1 and len(wechat.state.token_fetches) == 1


def test_wrong_credentials_are_a_clear_error_without_the_secret(wechat, cache_file, caplog):
    tokens = make(wechat, cache_file, secret="wrong-secret-abcdef0123")
    with caplog.at_level(logging.DEBUG), pytest.raises(WeChatTokenError) as err:
        tokens.get()
    assert err.value.errcode == 40125 and err.value.misconfigured and err.value.code == "wechat_token_40125"
    assert "secret" in str(err.value) and "wrong-secret-abcdef0123" not in caplog.text + str(err.value)
    assert not cache_file.exists()


def test_the_old_token_api_puts_no_secret_in_the_log(wechat, cache_file, caplog):
    with caplog.at_level(logging.DEBUG):
        token = make(wechat, cache_file, api="token").get()
    assert "cgi-bin/token" in caplog.text and "secret=***" in caplog.text
    assert APP_SECRET not in caplog.text and token not in caplog.text
