"""Alerts become push messages: opened and escalated only (not updates, suppressed findings,
acknowledgements or closes), keyed by the change, with the change's severity, a short title in
the language asked for, the alert's text with its limit and source as the body, the page link and
the structured fields; a first start begins after the newest change."""

from __future__ import annotations

import pytest

from tools.push.alert_source import AlertSource
from tools.watch.alerts import AlertSettings, AlertStore

LIMIT = {"type": "process_limit", "sensor": "VT-101", "metric": "vibration_rms", "unit": "mm/s",
         "limit": {"name": "alarm_high", "value": 4.5, "source": "OM-P-101 §3.1"},
         "readings": {"worst": 5.2, "count": 12}}


@pytest.fixture
def alerts(tmp_path):
    s = AlertStore(tmp_path / "alerts.sqlite", AlertSettings(quiet_s=3600))
    yield s
    s.close()


def test_opened_and_escalated_only(alerts, site):
    src = AlertSource(alerts, site)
    cursor = src.start_cursor()
    a = alerts.raise_alert("P-101", "limit_high:VT-101", "warning", "VT-101 above its warning limit", LIMIT,
                           at=1_000).alert
    alerts.raise_alert("P-101", "limit_high:VT-101", "warning", "VT-101 still high", LIMIT, at=2_000)  # update
    alerts.raise_alert("P-101", "limit_high:VT-101", "alarm", "VT-101 above its alarm limit 4.5 mm/s", LIMIT,
                       at=3_000)  # escalation
    alerts.acknowledge(a.id, "ana")
    alerts.close_alert(a.id, "ben")
    alerts.raise_alert("P-101", "limit_high:VT-101", "alarm", "again", LIMIT)  # quiet period: suppressed
    messages, new_cursor = src.messages_since(cursor)
    assert new_cursor == alerts.cursor()
    assert [m.key for m in messages] == [f"alert:{a.id}:opened:1", f"alert:{a.id}:escalated:2"]
    opened, escalated = messages
    assert (opened.severity, escalated.severity) == ("warning", "alarm")  # each as it was then
    assert opened.kind == "alert" and opened.target == "P-101" and opened.created_ms == 1_000
    assert opened.link == f"pages/alerts/detail?id={a.id}" and opened.lang == "zh"
    assert opened.title == "[警告] P-101 VT-101：超上限" and escalated.title == "[报警] P-101 VT-101：超上限 (升级)"
    assert escalated.body.startswith("VT-101 above its alarm limit 4.5 mm/s")
    assert "限值 4.5 mm/s（来源：OM-P-101 §3.1）" in escalated.body and "最差值 5.2 mm/s" in escalated.body
    assert escalated.fields == {
        "alert_id": a.id, "target": "P-101", "cause": "limit_high:VT-101", "severity": "alarm", "action": "escalated",
        "title": "VT-101 above its alarm limit 4.5 mm/s", "first_seen": 1_000, "last_seen": 3_000, "sensor": "VT-101",
        "value": 5.2, "limit": 4.5, "unit": "mm/s", "source": "OM-P-101 §3.1"}
    assert src.messages_since(new_cursor) == ([], new_cursor)


def test_english_and_the_explainers_checks(alerts, site):
    src = AlertSource(alerts, site, default_lang="en")
    explanation = {"type": "instrument_fault", "sensor": "GH-1-RH", "unit": "%",
                   "checks": [{"text": "Check the sensor's cable and supply.", "citation": {"doc": "OM-S-01",
                                                                                          "section": "§4"}}]}
    alerts.raise_alert("GH-1", "sensor_flatline:GH-1-RH", "warning", "GH-1-RH has not changed for 2 h", explanation)
    (m,), _ = src.messages_since(0)
    assert m.lang == "en" and m.title == "[warning] GH-1 GH-1-RH: sensor flatline"
    assert m.body == "GH-1-RH has not changed for 2 h\n- Check the sensor's cable and supply. [OM-S-01 §4]"


def test_a_first_start_does_not_page_history(alerts, site):
    alerts.raise_alert("P-101", "anomaly:P-101", "warning", "old news", {})
    src = AlertSource(alerts, site)
    start = src.start_cursor()
    assert src.messages_since(start) == ([], start)
    alerts.raise_alert("GH-2", "limit_low:GH-2-TEMP", "alarm", "GH-2 cold", {})
    (m,), _ = src.messages_since(start)
    assert m.title == "[报警] GH-2 GH-2-TEMP：低于下限"
