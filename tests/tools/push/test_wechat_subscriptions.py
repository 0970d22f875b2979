"""The authorisation book: counts survive a reopen, a repeated report counts once, a pile-up is
capped, a reservation the outbox never used goes back, a newer file is refused."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tools.push.subscriptions import SubscriptionStore, SubscriptionStoreError

T = "TPL-alert-0123456789"
HOUR_MS = 3_600_000


@pytest.fixture
def path(tmp_path):
    return tmp_path / "wechat_subscriptions.sqlite"


def test_counts_and_preferences_survive_a_reopen(path):
    store = SubscriptionStore(path)
    store.record_results("o-a", {T: "accept"})
    store.record_results("o-a", {T: "accept", "TPL-other-0000000": "reject"})
    store.set_preference("o-a", "alert", "warning", ["P-101"])
    assert store.reserve("alert:1", T, "alert", "alarm", "P-101", "alarm") == ["o-a"]
    store.close()
    again = SubscriptionStore(path)
    assert again.remaining("o-a") == {T: {"remaining": 1, "pending": 1}}
    assert again.preference("o-a", "alert", "alarm").to_dict() == {"min_severity": "warning", "targets": ["P-101"]}
    assert [e["action"] for e in again.events("o-a")][-3:] == ["reject", "accept", "accept"]


def test_a_repeated_report_counts_once(path):
    store = SubscriptionStore(path)
    assert store.record_results("o-a", {T: "accept"}, report_id="r1") is True
    assert store.record_results("o-a", {T: "accept"}, report_id="r1") is False
    assert store.record_results("o-b", {T: "accept"}, report_id="r1") is True  # another user's r1
    assert store.remaining("o-a")[T]["remaining"] == 1


def test_accepts_are_capped(path):
    store = SubscriptionStore(path, max_authorisations=3)
    for _ in range(10):
        store.record_results("o-a", {T: "accept"})
    assert store.remaining("o-a")[T]["remaining"] == 3


def test_reject_ban_and_filter_add_nothing_and_bad_results_are_refused(path):
    store = SubscriptionStore(path)
    store.record_results("o-a", {T: "reject"})
    store.record_results("o-a", {T: "ban"})
    store.record_results("o-a", {T: "filter"})
    assert store.remaining("o-a") == {}
    with pytest.raises(SubscriptionStoreError):
        store.record_results("o-a", {T: "yes"})


def test_a_reservation_never_sent_goes_back_after_its_ttl_and_a_late_send_takes_one_again(path):
    store = SubscriptionStore(path, reservation_ttl_s=3600)
    store.record_results("o-a", {T: "accept"}, at=0)
    assert store.reserve("alert:1", T, "alert", "alarm", "P-101", "alarm", at=0) == ["o-a"]
    assert store.remaining("o-a")[T] == {"remaining": 0, "pending": 1}
    # an hour and more later another message asks: the stale one is given back first, and used
    assert store.reserve("alert:2", T, "alert", "alarm", "P-101", "alarm", at=HOUR_MS + 1) == ["o-a"]
    assert store.take("alert:1", "o-a", T, at=HOUR_MS + 2) == "none"  # the outbox finally tries the first
    store.settle("alert:2", "o-a", T, "spent")
    assert store.remaining("o-a")[T] == {"remaining": 0, "pending": 0}


def test_the_book_is_one_transaction_per_reservation_across_connections(path):
    """Two processes (the server and ``onsite watch``) on one file never promise one authorisation twice."""
    a, b = SubscriptionStore(path), SubscriptionStore(path)
    a.record_results("o-a", {T: "accept"})
    assert a.reserve("alert:1", T, "alert", "alarm", "P-101", "alarm") == ["o-a"]
    assert b.reserve("alert:2", T, "alert", "alarm", "P-101", "alarm") == []
    assert b.take("alert:2", "o-a", T) == "none"


def test_a_file_from_a_newer_onsite_is_refused(path):
    SubscriptionStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(SubscriptionStoreError, match="newer"):
        SubscriptionStore(path)


def test_the_file_is_private_under_a_permissive_umask(path):
    old = os.umask(0o022)
    try:
        store = SubscriptionStore(path)
        store.record_results("o-a", {T: "accept"})
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
                 if p.exists()}
        store.close()
    finally:
        os.umask(old)
    assert modes and set(modes.values()) == {0o600}, modes
