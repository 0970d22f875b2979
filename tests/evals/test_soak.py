"""`onsite bench soak`: the figures it reports from what the clients saw and the audit log, and (slow)
a short real run against `onsite serve` with the fake embedder."""

from __future__ import annotations

import json
import sqlite3

import pytest

from assistant.audit import AuditLog
from evals.soak import _cancelled_rows, _report, run_soak


def test_the_report_counts_statuses_and_matches_abandoned_requests_to_their_audit_rows(tmp_path):
    audit = AuditLog(tmp_path / "audit.sqlite")
    audit.record_cancelled(thread_id="pabc:soak-1-4", user="key:x", kind="ask", question="q", scope={},
                           cancelled_at=1000.2, seen_s=0.01, release_s=0.05, timings={})
    audit.record_cancelled(thread_id="pabc:soak-2-9", user="key:x", kind="ask", question="q", scope={},
                           cancelled_at=2000.0, seen_s=0.0, release_s=1.5, timings={})
    audit.close()
    cancelled = _cancelled_rows(tmp_path / "audit.sqlite")
    assert set(cancelled) == {"soak-1-4", "soak-2-9"}
    results = [
        {"kind": "chat", "status": 200, "seconds": 1.0, "conversation": "soak-0-0"},
        {"kind": "sse", "status": 200, "seconds": 3.0, "conversation": "soak-0-1"},
        {"kind": "chat", "status": 429, "seconds": 0.01, "conversation": "soak-0-2"},
        {"kind": "bad-empty", "status": 422, "seconds": 0.01, "conversation": "soak-0-3"},
        {"kind": "bad-x", "status": 500, "seconds": 0.01, "conversation": "soak-0-4", "problem": "boom"},
        {"kind": "abandon-chat", "status": "gave-up", "gave_up_at": 1000.0, "seconds": 1.0, "conversation": "soak-1-4"},
        {"kind": "abandon-v1", "status": "gave-up", "gave_up_at": 1999.0, "seconds": 1.0, "conversation": "soak-2-9"},
        {"kind": "abandon-sse", "status": "gave-up", "gave_up_at": 5.0, "seconds": 1.0, "conversation": "soak-3-1"},
    ]
    r = _report(results, [(0.0, 100.0), (3.0, 130.0)], 100.0, 105.0, cancelled, clients=2, minutes=1, model=None)
    assert r["statuses"] == {"200": 2, "422": 1, "429": 1, "500": 1, "gave-up": 3}
    assert r["five_xx"] == 1 and r["five_xx_examples"][0]["problem"] == "boom"
    assert r["latency_s"]["answered"] == 2
    a = r["abandoned"]
    assert (a["gave_up"], a["matched"], a["unmatched"], a["over_1s"]) == (3, 2, 1, 1)
    assert a["release_s"]["max"] == 1.5 and a["client_to_release_s"]["max"] == pytest.approx(2.5, abs=0.01)
    assert r["memory_mb"]["peak"] == 130.0 and r["memory_mb"]["end_vs_start_pct"] == 5.0
    assert r["ok"] is False  # a 5xx and a release over a second
    json.dumps(r)


@pytest.mark.slow
def test_a_short_real_soak(tmp_path, monkeypatch):
    monkeypatch.setenv("ONSITE_EMBEDDING__MODEL", "fake")
    r = run_soak(clients=4, minutes=0.3, warmup_minutes=0.1, home=tmp_path / "home", seed=1)
    assert r["server_exit_code"] == 0 and r["requests"] > 10 and r["transport_errors"] == 0
    assert r["statuses"].get("200", 0) > 0
    assert r["memory_mb"]["start"] > 0 and r["memory_mb"]["samples"]
    db = sqlite3.connect(tmp_path / "home" / "audit.sqlite")
    assert db.execute("SELECT count(*) FROM turns").fetchone()[0] > 0
