"""The WeChat channel against the stand-in over real HTTP: what is sent, how each of WeChat's
answers settles the user's one-time authorisations, and who is chosen as a recipient."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tests.wechat_standin import APP_SECRET, TEMPLATES
from tools.push.channel import Channel, Delivery, PushMessage

ALERT_T, ADVICE_T = TEMPLATES[0], TEMPLATES[1]
CREATED = 1_796_711_400_000  # 2026-12-08 06:30 UTC = 14:30 in Asia/Shanghai


def alert(n: int = 1, *, severity: str = "alarm", target: str = "P-101", title: str = "Pump P-101 bearing vibration",
          lang: str = "zh", link: str = "pages/alerts/detail?id=1", **fields) -> PushMessage:
    return PushMessage(key=f"alert:{n}:opened", kind="alert", target=target, severity=severity, title=title,
                       body="VT-101 4.7 mm/s over its 4.5 mm/s alarm [pump manual p. 12]", created_ms=CREATED,
                       lang=lang, link=link, fields={"value": 4.7, **fields})


def accept(channel, openid: str, times: int = 1, template: str = ALERT_T) -> None:
    for _ in range(times):
        channel.store.record_results(openid, {template: "accept"})


def left(channel, openid: str, template: str = ALERT_T) -> int:
    return channel.store.remaining(openid).get(template, {}).get("remaining", 0)


def test_the_channel_is_a_channel(make_channel):
    channel = make_channel()
    assert isinstance(channel, Channel) and channel.name == "wechat"


def test_a_message_is_sent_with_its_template_fields_page_state_and_language(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert(lang="en")
    assert channel.recipients(message) == ["o-alice"]
    delivery = channel.send(message, "o-alice")
    assert delivery.ok and not delivery.retry and delivery.detail["msgid"]
    (body,) = wechat.state.sent
    assert body["touser"] == "o-alice" and body["template_id"] == ALERT_T
    assert body["page"] == "pages/alerts/detail?id=1"
    assert body["miniprogram_state"] == "trial" and body["lang"] == "en_US"
    assert body["data"] == {"thing1": {"value": "Pump P-101 bearing…"}, "time2": {"value": "2026-12-08 14:30"},
                            "thing3": {"value": "P-101"}, "number4": {"value": "4.7"}, "phrase5": {"value": "报警"}}
    assert left(channel, "o-alice") == 0
    assert channel.store.sends(message.key)[0]["ok"] is True


def test_a_long_thing_is_cut_to_20_characters_and_wechat_takes_it(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice")
    title = "泵 P-101 轴承振动持续升高，预计五天后达到报警值，请安排检查"
    message = alert(title=title)
    channel.recipients(message)
    assert channel.send(message, "o-alice").ok
    value = wechat.state.sent[0]["data"]["thing1"]["value"]
    assert len(value) == 20 and value.endswith("…") and value[:19] == title[:19]
    assert wechat.state.answers == [("o-alice", 0)]


def test_the_template_page_is_used_when_the_message_has_no_link(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert(link="")
    channel.recipients(message)
    assert channel.send(message, "o-alice").ok
    assert wechat.state.sent[0]["page"] == "pages/alerts/index"


def test_each_accept_allows_one_message_and_the_third_alert_finds_no_recipient(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice", times=2)
    for n in (1, 2):
        message = alert(n)
        assert channel.recipients(message) == ["o-alice"]
        assert channel.send(message, "o-alice").ok
    assert channel.recipients(alert(3)) == []
    assert len(wechat.state.sent) == 2 and left(channel, "o-alice") == 0
    # a send without a reservation (e.g. a replay) is not tried either: nothing is left
    delivery = channel.send(alert(3), "o-alice")
    assert not delivery.ok and not delivery.retry and delivery.error == "wechat_no_authorisation"
    assert len(wechat.state.answers) == 2


def test_asking_again_for_the_same_message_reserves_nothing_more_and_a_sent_one_is_not_sent_again(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice", times=3)
    message = alert()
    assert channel.recipients(message) == ["o-alice"]
    assert channel.recipients(message) == ["o-alice"]  # the outbox asked again after a restart
    assert left(channel, "o-alice") == 2
    assert channel.send(message, "o-alice").ok
    again = channel.send(message, "o-alice")
    assert again.ok and again.detail["already_sent"] is True
    assert len(wechat.state.sent) == 1 and left(channel, "o-alice") == 2
    assert channel.recipients(message) == []


def test_alerts_below_the_users_minimum_severity_spend_nothing(make_channel):
    channel = make_channel()  # default minimum: alarm
    accept(channel, "o-alice", times=3)
    accept(channel, "o-bob", times=3)
    channel.store.set_preference("o-bob", "alert", "warning", None)
    assert channel.recipients(alert(1, severity="warning")) == ["o-bob"]
    assert channel.recipients(alert(2, severity="info")) == []
    assert sorted(channel.recipients(alert(3, severity="critical"))) == ["o-alice", "o-bob"]
    assert left(channel, "o-alice") == 2 and left(channel, "o-bob") == 1


def test_a_user_following_some_assets_gets_only_theirs(make_channel):
    channel = make_channel(default_min_severity="info")
    accept(channel, "o-alice", times=2)
    channel.store.set_preference("o-alice", "alert", "info", ["GH-1"])
    assert channel.recipients(alert(1, target="P-101")) == []
    assert channel.recipients(alert(2, target="GH-1")) == ["o-alice"]


def test_a_kind_without_a_template_or_a_disabled_channel_has_no_recipients(make_channel):
    channel = make_channel()
    accept(channel, "o-alice")
    reminder = PushMessage("reminder:1", "reminder", "P-101", "info", "Grease the bearing", "", CREATED)
    assert channel.recipients(reminder) == []
    assert channel.send(reminder, "o-alice").error == "wechat_no_template"
    off = make_channel(enabled=True)
    off.settings = off.settings.model_copy(update={"enabled": False})
    assert off.recipients(alert()) == []


# --- WeChat's answers ------------------------------------------------------------------------


@pytest.mark.parametrize("openid, error, remaining_after", [
    ("o-bad-openid", "wechat_40003_bad_openid", 2),  # given back (but the user is left out)
    ("o-refused", "wechat_43101_refused", 0),
])
def test_a_user_wechat_refuses_is_recorded(make_channel, wechat, openid, error, remaining_after):
    channel = make_channel()
    accept(channel, openid, times=2)
    message = alert()
    assert channel.recipients(message) == [openid]
    delivery = channel.send(message, openid)
    assert isinstance(delivery, Delivery) and not delivery.ok and not delivery.retry
    assert delivery.error == error
    assert left(channel, openid) == remaining_after
    assert channel.recipients(alert(2)) == []  # bad openid: left out; refused: none left
    assert channel.store.events(openid)[0]["action"] in ("bad_openid", "refused")
    assert channel.store.sends(message.key)[0]["errcode"] == int(error.split("_")[1])


def test_a_bad_openid_comes_back_when_the_user_subscribes_again(make_channel):
    channel = make_channel()
    accept(channel, "o-bad-openid")
    message = alert()
    channel.recipients(message)
    channel.send(message, "o-bad-openid")
    assert channel.store.user_state("o-bad-openid")["bad_openid_at"] is not None
    accept(channel, "o-bad-openid")
    assert channel.recipients(alert(2)) == ["o-bad-openid"]


def test_a_refusal_voids_the_other_messages_set_aside_for_that_user(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice", times=3)
    first, second = alert(1), alert(2)
    channel.recipients(first), channel.recipients(second)
    wechat.state.script["o-alice"] = [43101]
    assert channel.send(first, "o-alice").error == "wechat_43101_refused"
    delivery = channel.send(second, "o-alice")  # not tried at WeChat: nothing left
    assert delivery.error == "wechat_no_authorisation"
    assert wechat.state.answers == [("o-alice", 43101)] and left(channel, "o-alice") == 0


def test_a_bad_template_id_fails_gives_the_authorisation_back_and_tells_the_operator(make_channel, wechat, caplog):
    channel = make_channel(templates={"alert": {"id": "TPL-withdrawn-000000", "fields": {"thing1": "title"}}})
    accept(channel, "o-alice", template="TPL-withdrawn-000000")
    message = alert()
    channel.recipients(message)
    with caplog.at_level(logging.INFO, logger="onsite.push.wechat"):
        delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, False, "wechat_40037_bad_template")
    assert left(channel, "o-alice", "TPL-withdrawn-000000") == 1
    assert any(r.levelno == logging.ERROR and "push.wechat.templates" in r.getMessage() for r in caplog.records)


def test_a_bad_page_fails_and_gives_the_authorisation_back(make_channel):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert(link="/not a page")
    channel.recipients(message)
    delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, False, "wechat_41030_bad_page")
    assert left(channel, "o-alice") == 1


def test_a_value_wechat_refuses_fails_with_the_field(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert()
    channel.recipients(message)
    wechat.state.script["o-alice"] = [47003]
    delivery = channel.send(message, "o-alice")
    assert delivery.error == "wechat_47003_bad_value" and not delivery.retry
    assert delivery.detail["field"] == "thing1"  # named in WeChat's errmsg
    assert left(channel, "o-alice") == 1


def test_a_value_we_know_wechat_refuses_is_not_sent_and_spends_nothing(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert(value="high")  # a word in a number key
    assert channel.recipients(message) == ["o-alice"]
    delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, False, "wechat_bad_value")
    assert delivery.detail["field"] == "number4" and "number" in delivery.detail["reason"]
    assert wechat.state.answers == [] and left(channel, "o-alice") == 1
    missing = PushMessage("alert:9:opened", "alert", "P-101", "alarm", "Pump", "", CREATED)  # no 'value'
    channel.recipients(missing)
    assert channel.send(missing, "o-alice").detail["field"] == "number4"
    assert left(channel, "o-alice") == 1


@pytest.mark.parametrize("script, error", [([-1], "wechat_-1"), ([45009], "wechat_45009"), ([503], "http_503")])
def test_busy_limited_or_down_is_retried_with_the_authorisation_kept(make_channel, wechat, script, error):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert()
    channel.recipients(message)
    wechat.state.script["o-alice"] = list(script)
    delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, True, error)
    assert channel.store.remaining("o-alice")[ALERT_T] == {"remaining": 0, "pending": 1}
    assert channel.send(message, "o-alice").ok  # the outbox's retry
    assert channel.store.remaining("o-alice")[ALERT_T] == {"remaining": 0, "pending": 0}


def test_an_unreachable_or_silent_wechat_is_retried_never_raised(make_channel, wechat):
    channel = make_channel(base_url="http://127.0.0.1:9")  # nothing listens on the discard port
    accept(channel, "o-alice")
    message = alert()
    channel.recipients(message)
    delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry) == (False, True) and delivery.error == "wechat_token_unreachable"
    slow = make_channel(timeout_s=0.3)
    accept(slow, "o-slow")
    slow_message = alert(2)
    slow.recipients(slow_message)
    delivery = slow.send(slow_message, "o-slow")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, True, "wechat_timeout")
    assert channel.store.remaining("o-alice")[ALERT_T] == {"remaining": 0, "pending": 1}
    deadline = time.monotonic() + 5  # the stand-in still answers the slow one: let it finish here
    while not wechat.state.sent and time.monotonic() < deadline:
        time.sleep(0.05)


def test_wrong_app_credentials_keep_the_message_for_later_and_say_so(make_channel, caplog):
    channel = make_channel(secret="not-the-secret-000000")
    accept(channel, "o-alice")
    message = alert()
    channel.recipients(message)
    with caplog.at_level(logging.DEBUG):
        delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, True, "wechat_token_40125")
    assert any(r.levelno == logging.ERROR and "wechat_secret" in r.getMessage() for r in caplog.records)
    assert "not-the-secret-000000" not in caplog.text


def test_a_token_wechat_revoked_is_replaced_and_the_message_sent_once(make_channel, wechat):
    channel = make_channel()
    accept(channel, "o-alice", times=2)
    first = alert(1)
    channel.recipients(first)
    assert channel.send(first, "o-alice").ok
    wechat.state.revoke_tokens()  # e.g. another backend forced a new token
    second = alert(2)
    channel.recipients(second)
    assert channel.send(second, "o-alice").ok
    assert len(wechat.state.token_fetches) == 2 and len(wechat.state.sent) == 2


def test_secrets_and_tokens_never_reach_the_log(make_channel, wechat, caplog):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert()
    channel.recipients(message)
    with caplog.at_level(logging.DEBUG):
        assert channel.send(message, "o-alice").ok
    token = channel.tokens.get()
    assert "subscribe/send" in caplog.text  # httpx's request line is there …
    assert token not in caplog.text and APP_SECRET not in caplog.text  # … without the token
    assert "access_token=***" in caplog.text
    assert token not in repr(channel) + repr(channel.tokens)


def test_the_token_is_fetched_once_across_sends_and_a_restart(make_channel, wechat, tmp_path):
    home = tmp_path / "home"
    for n in (1, 2):  # two processes, one after the other, on one data home
        channel = make_channel(home)
        accept(channel, "o-alice", times=2)
        for m in (1, 2):
            message = alert(n * 10 + m)
            channel.recipients(message)
            assert channel.send(message, "o-alice").ok
        channel.close()
    assert len(wechat.state.sent) == 4 and len(wechat.state.token_fetches) == 1


def test_concurrent_sends_fetch_one_token(make_channel, wechat):
    channel = make_channel()
    wechat.state.token_delay_s = 0.3
    users = [f"o-user{i}" for i in range(8)]
    for openid in users:
        accept(channel, openid)
    message = alert()
    assert sorted(channel.recipients(message)) == users
    results: dict[str, Delivery] = {}
    threads = [threading.Thread(target=lambda u=u: results.__setitem__(u, channel.send(message, u))) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert all(results[u].ok for u in users)
    assert len(wechat.state.token_fetches) == 1 and len(wechat.state.sent) == 8


def test_send_never_raises_even_when_its_own_store_is_gone(make_channel):
    channel = make_channel()
    accept(channel, "o-alice")
    message = alert()
    channel.recipients(message)
    channel.store.close()  # a bug or a broken disk under the channel
    delivery = channel.send(message, "o-alice")
    assert (delivery.ok, delivery.retry, delivery.error) == (False, True, "wechat_internal")
