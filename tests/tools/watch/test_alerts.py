"""The alert store: one active alert per key, escalation, acknowledge and close with who and when,
the quiet period, filters and paging, clear errors, kill -9 durability and concurrent raises."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from tools.errors import NotFoundError, ToolConflictError, ToolInputError
from tools.watch.alerts import AlertNotFoundError, AlertSettings, AlertStateError, AlertStore
from tools.watch.sensor_faults import SensorFault

T = 1_780_000_000_000
MIN = 60_000
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def alerts(tmp_path):
    s = AlertStore(tmp_path / "alerts.sqlite", AlertSettings(quiet_s=1800, quiet_by_cause={"sensor_spike": 7200}))
    yield s
    s.close()


def _raise(store, severity="warning", at=T, cause="sensor_flatline:TT-101", target="P-101", **kw):
    return store.raise_alert(target, cause, severity, kw.pop("title", "TT-101 flatline"),
                             kw.pop("explanation", {"readings": [[at, 23.4]]}), at=at)


def test_same_key_updates_instead_of_duplicating(alerts):
    first = _raise(alerts, at=T)
    assert (first.action, first.notify, first.alert.state, first.alert.count) == ("opened", True, "open", 1)
    again = _raise(alerts, at=T + 5 * MIN, explanation={"readings": [[T + 5 * MIN, 23.4]]})
    assert (again.action, again.notify) == ("updated", False)
    a = again.alert
    assert (a.id, a.count, a.first_seen, a.last_seen) == (first.alert.id, 2, T, T + 5 * MIN)
    assert a.explanation == {"readings": [[T + 5 * MIN, 23.4]]}  # the latest explanation
    other = _raise(alerts, cause="sensor_flatline:TT-102")
    assert other.action == "opened" and other.alert.id != a.id
    assert alerts.list(state="active").total == 2


def test_escalation_recorded_reported_and_reopens_an_acknowledged_alert(alerts):
    a = _raise(alerts, "warning").alert
    alerts.acknowledge(a.id, "li.wei", at=T + MIN)
    up = _raise(alerts, "alarm", at=T + 2 * MIN)
    assert (up.action, up.notify, up.previous_severity) == ("escalated", True, "warning")
    assert (up.alert.severity, up.alert.state, up.alert.escalations, up.alert.acked_by) == ("alarm", "open", 1, None)
    down = _raise(alerts, "warning", at=T + 3 * MIN)  # a milder finding does not lower it
    assert (down.action, down.alert.severity) == ("updated", "alarm")
    events = [(e["action"], e["actor"]) for e in alerts.get(a.id).events]
    assert events == [("opened", "watch"), ("acknowledged", "li.wei"), ("escalated", "watch")]
    assert alerts.get(a.id).events[2]["detail"] == {"from": "warning", "to": "alarm", "was_acknowledged_by": "li.wei"}


def test_acknowledge_and_close_record_who_and_when(alerts):
    a = _raise(alerts).alert
    acked = alerts.acknowledge(a.id, "li.wei", at=T + MIN)
    assert (acked.state, acked.acked_by, acked.acked_at) == ("acknowledged", "li.wei", T + MIN)
    assert _raise(alerts, at=T + 2 * MIN).alert.state == "acknowledged"  # still the one alert, still acked
    closed = alerts.close_alert(str(a.id), "admin", "transmitter replaced", at=T + 3 * MIN)
    assert (closed.state, closed.closed_by, closed.closed_at, closed.close_note) == (
        "closed", "admin", T + 3 * MIN, "transmitter replaced")
    assert alerts.get(a.id).events[-1]["detail"] == {"note": "transmitter replaced"}


def test_quiet_period_after_close_then_a_new_alert(alerts):
    a = _raise(alerts, at=T).alert
    alerts.close_alert(a.id, "admin", at=T + MIN)
    quiet = _raise(alerts, at=T + 10 * MIN)  # flapping back within 30 min: no new alert, no page
    assert (quiet.action, quiet.notify, quiet.alert.id, quiet.alert.suppressed) == ("suppressed", False, a.id, 1)
    assert alerts.list(state="active").total == 0
    worse = _raise(alerts, "critical", at=T + 12 * MIN)  # worse than what was closed: pages despite the quiet
    assert worse.action == "opened" and worse.alert.id != a.id
    alerts.close_alert(worse.alert.id, "admin", at=T + 13 * MIN)
    after = _raise(alerts, "critical", at=T + 13 * MIN + 1800_000)  # quiet over
    assert after.action == "opened"


def test_quiet_period_by_cause_kind(alerts):
    a = _raise(alerts, cause="sensor_spike:TT-101", at=T).alert
    alerts.close_alert(a.id, "admin", at=T)
    assert _raise(alerts, cause="sensor_spike:TT-101", at=T + 60 * MIN).action == "suppressed"  # 2 h for spikes
    assert _raise(alerts, cause="sensor_spike:TT-101", at=T + 121 * MIN).action == "opened"


def test_filters_and_paging(alerts):
    for i in range(7):
        _raise(alerts, ["info", "warning", "alarm", "critical"][i % 4], at=T + i * MIN, cause=f"c{i}",
               target="P-101" if i < 4 else "GH-1")
    alerts.close_alert(alerts.list(target="GH-1").alerts[0].id, "admin")
    page = alerts.list(limit=3)
    assert (page.total, len(page.alerts), page.next_offset) == (7, 3, 3)
    assert [a.cause for a in page.alerts] == ["c6", "c5", "c4"]  # last seen first
    last = alerts.list(limit=3, offset=6)
    assert ([a.cause for a in last.alerts], last.next_offset) == (["c0"], None)
    assert {a.cause for a in alerts.list(target="GH-1", state="active").alerts} == {"c4", "c5"}
    assert [a.cause for a in alerts.list(state="closed").alerts] == ["c6"]
    assert {a.cause for a in alerts.list(severity="alarm").alerts} == {"c2", "c6"}
    assert {a.cause for a in alerts.list(min_severity="alarm").alerts} == {"c2", "c3", "c6"}
    assert {a.cause for a in alerts.list(since=T + 5 * MIN).alerts} == {"c5", "c6"}
    assert alerts.active_counts() == {"info": 2, "warning": 2, "alarm": 1, "critical": 1}


def test_changes_since_is_a_stream_cursor(alerts):
    start = alerts.cursor()
    a = _raise(alerts).alert
    _raise(alerts, at=T + MIN)  # a plain update is no change of state
    alerts.acknowledge(a.id, "li.wei")
    changes = alerts.changes_since(start)
    assert [(c.action, c.alert_id) for c in changes] == [("opened", a.id), ("acknowledged", a.id)]
    assert changes[-1].alert.state == "acknowledged" and changes[-1].actor == "li.wei"
    assert json.loads(json.dumps(changes[0].to_dict()))["alert"]["id"] == a.id  # ready for an SSE data line
    assert alerts.changes_since(changes[-1].seq) == []
    assert alerts.cursor() == changes[-1].seq


def test_clear_errors(alerts, tmp_path):
    with pytest.raises(AlertNotFoundError, match="no alert 99") as e:
        alerts.get(99)
    assert isinstance(e.value, NotFoundError)
    with pytest.raises(AlertNotFoundError, match="alert ids are numbers"):
        alerts.acknowledge("abc", "li.wei")
    a = _raise(alerts).alert
    alerts.close_alert(a.id, "admin")
    with pytest.raises(AlertStateError, match="already closed by admin") as e:
        alerts.acknowledge(a.id, "li.wei")
    assert isinstance(e.value, ToolConflictError)
    with pytest.raises(AlertStateError, match="already closed"):
        alerts.close_alert(a.id, "admin")
    b = _raise(alerts, cause="other").alert
    alerts.acknowledge(b.id, "li.wei")
    with pytest.raises(AlertStateError, match="already acknowledged by li.wei"):
        alerts.acknowledge(b.id, "zhang")
    for bad in (dict(state="gone"), dict(severity="fatal"), dict(min_severity="x"), dict(limit=0),
                dict(offset=-1)):
        with pytest.raises(ToolInputError):
            alerts.list(**bad)
    with pytest.raises(ToolInputError, match="unknown severity"):
        _raise(alerts, "fatal")
    with pytest.raises(ToolInputError, match="name of the person"):
        alerts.acknowledge(b.id, "  ")
    with pytest.raises(ToolInputError, match="bytes; at most 16384"):
        _raise(alerts, cause="big", explanation={"readings": list(range(10_000))})
    with pytest.raises(ToolInputError, match="not plain JSON"):
        _raise(alerts, cause="nan", explanation={"value": float("nan")})
    with pytest.raises(ValidationError):
        AlertSettings(quiet_minutes=5)
    assert alerts.list(state="active").total == 1  # nothing half-written by the refused calls


def test_sensor_fault_finding_fits_an_alert(alerts):
    import numpy as np
    f = SensorFault("TT-101", "flatline", T, T + 47 * MIN, "TT-101 has not changed from 23.4 °C for 47 min",
                    True, {"value": np.float64(23.4), "readings": np.int64(48)})
    r = alerts.raise_alert("P-101", f.cause, "warning", f.message, f.to_dict(), at=f.end_ms)
    assert r.alert.explanation["details"] == {"value": 23.4, "readings": 48}
    assert r.alert.cause == "sensor_flatline:TT-101"


def test_concurrent_raises_from_two_threads_give_one_alert(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    results, barrier = [], threading.Barrier(2)

    def worker():
        barrier.wait()
        for i in range(50):
            results.append(_raise(store, at=T + i).action)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    page = store.list()
    assert (page.total, page.alerts[0].count, results.count("opened")) == (1, 100, 1)
    # a second process-level handle on the same file sees and extends the same alert
    other = AlertStore(tmp_path / "alerts.sqlite")
    assert _raise(other).alert.id == page.alerts[0].id
    other.close()
    store.close()


_WRITER = """
import sys
from tools.watch.alerts import AlertStore
store = AlertStore(sys.argv[1])
i = 0
while True:
    r = store.raise_alert("P-101", f"cause-{i % 40}", "warning", "t", {"i": i}, at=1_780_000_000_000 + i)
    print(r.alert.id, i, flush=True)  # printed only after the commit returned
    i += 1
"""


def test_every_committed_alert_survives_kill_9(tmp_path):
    db = tmp_path / "alerts.sqlite"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env)
    seen = {}
    try:
        for line in proc.stdout:
            alert_id, i = map(int, line.split())
            seen[alert_id] = i
            if i >= 150:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    store = AlertStore(db)
    assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(seen) == 40
    for alert_id, i in seen.items():
        a = store.get(alert_id)
        assert a.state == "open" and a.explanation["i"] >= i  # the last committed update (or a later one)
    assert store.list(limit=500).total == 40  # no duplicates after the restart either
    assert _raise(store, cause="cause-0").action == "updated"
    store.close()


_RACER = """
import sys
from tools.watch.alerts import AlertStore
store = AlertStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for i in range(30):
    store.raise_alert("GH-1", "limit_high:GH-1-TEMP", "alarm", "too hot", {"i": i}, at=1_780_000_000_000 + i)
"""


def test_two_processes_raising_the_same_key_give_one_alert(tmp_path):
    db = tmp_path / "alerts.sqlite"
    AlertStore(db).close()  # schema first, so neither racer migrates
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:  # start both at once
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=30) == 0
    with AlertStore(db) as store:
        page = store.list()
        assert (page.total, page.alerts[0].count) == (1, 60)
        assert page.to_dict()["alerts"][0]["cause"] == "limit_high:GH-1-TEMP"
