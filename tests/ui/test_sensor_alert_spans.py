"""Sensor plots mark alert periods: spans from first seen to closed / last seen, per severity,
for alerts on the sensor, its asset or its zone (a real AlertStore behind the AlertService)."""

from datetime import UTC, datetime, timedelta

import pytest

from tools.watch.alerts import AlertStore
from tools.watch.service import AlertService
from ui.tab_sensors import ALERT_COLOURS, SensorHandlers, alert_span_rows, sensor_alerts

from .fakes import FakeService

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # FakeService.now()


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@pytest.fixture
def alerts(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    yield AlertService(store), store
    store.close()


def raise_(store, target, cause, severity, first, last=None):
    r = store.raise_alert(target, cause, severity, f"{cause} {severity}", {}, at=ms(first))
    if last is not None:
        store.raise_alert(target, cause, severity, f"{cause} {severity}", {}, at=ms(last))
    return r.alert.id


def test_only_alerts_on_the_sensor_its_asset_or_zone_in_the_window(tmp_path, alerts):
    service, store = alerts
    site = FakeService(tmp_path / "home").site
    own = raise_(store, "GH-1", "limit_high:GH-1-TEMP", "alarm", NOW - timedelta(hours=5), NOW - timedelta(hours=3))
    raise_(store, "GH-1", "limit_high:GH-1-RH", "alarm", NOW - timedelta(hours=4))  # another sensor of the zone
    raise_(store, "GH-1", "limit_high:GH-1-TEMP-OLD", "warning", NOW - timedelta(hours=4))  # no such subject
    old = raise_(store, "P-101", "anomaly:P-101", "warning", NOW - timedelta(days=3))  # before the window
    asset = raise_(store, "P-101", "anomaly:P-101-X", "warning", NOW - timedelta(hours=1))
    got = sensor_alerts(service, site, "GH-1-TEMP", ms(NOW - timedelta(hours=24)), ms(NOW))
    assert [a["id"] for a in got] == [own]
    vib = [a["id"] for a in sensor_alerts(service, site, "VT-101", ms(NOW - timedelta(hours=24)), ms(NOW))]
    assert old not in vib and asset not in vib  # the anomaly of three days ago ended before; the other names nothing
    fresh = raise_(store, "P-101", "sensor_spike:VT-101", "info", NOW - timedelta(hours=2))
    anomaly = store.raise_alert("P-101", "anomaly:P-101", "warning", "again", {}, at=ms(NOW - timedelta(hours=1)))
    vib = [a["id"] for a in sensor_alerts(service, site, "VT-101", ms(NOW - timedelta(hours=24)), ms(NOW))]
    assert fresh in vib and anomaly.alert.id in vib  # its asset's anomaly shades the vibration plot too


def test_span_rows_shade_first_seen_to_closed_between_the_plotted_extremes(tmp_path, alerts):
    service, store = alerts
    site = FakeService(tmp_path / "home").site
    first, last = NOW - timedelta(hours=6), NOW - timedelta(hours=2)
    aid = raise_(store, "GH-1", "limit_low:GH-1-TEMP", "critical", first, last)
    store.close_alert(aid, "Wang", "")
    a = service.get_alert(aid)
    a["closed_at"] = ms(NOW - timedelta(hours=1))  # closed an hour after it was last seen
    data = [{"time": None, "value": 10.0, "series": "value"}, {"time": None, "value": 30.0, "series": "value"}]
    start, end = ms(NOW - timedelta(hours=24)), ms(NOW)
    rows = alert_span_rows([a], data, site, start, end, "en")
    assert {r["series"] for r in rows} == {f"⚠ critical #{aid}"}
    times = [r["time"] for r in rows]
    local = lambda dt: dt.astimezone(site.tz).replace(tzinfo=None)  # noqa: E731 - the plot's wall clock
    assert times[0] == local(first) and times[-1] == local(NOW - timedelta(hours=1)) and times == sorted(times)
    values = [r["value"] for r in rows]
    assert min(values) < 10.0 and max(values) > 30.0 and values[0] != values[1]  # strokes bottom to top
    assert len(rows) >= 5 * 300 / 24 - 1  # five hours of a 24-hour window: dense enough to read as a band
    # clipped to the window; a single finding still gets a visible stroke
    one = dict(a, first_seen=ms(NOW - timedelta(hours=30)), closed_at=None, last_seen=ms(NOW - timedelta(hours=23)))
    clipped = alert_span_rows([one], data, site, start, end, "zh")
    assert clipped[0]["time"] == local(NOW - timedelta(hours=24)) and clipped[0]["series"] == f"⚠ 严重 #{aid}"
    dot = dict(a, first_seen=ms(NOW - timedelta(hours=3)), last_seen=ms(NOW - timedelta(hours=3)), closed_at=None)
    assert len(alert_span_rows([dot], data, site, start, end, "en")) >= 2
    assert alert_span_rows([a], [], site, start, end, "en") == []  # nothing plotted: nothing to shade


def test_the_sensor_tab_plots_alert_spans_in_the_severity_colour(tmp_path, alerts):
    service, store = alerts
    fake = FakeService(tmp_path / "home")
    aid = raise_(store, "GH-1", "limit_high:GH-1-TEMP", "alarm", NOW - timedelta(hours=5), NOW - timedelta(hours=4))
    plot, _ = SensorHandlers(fake, fake.site, service).show("GH-1-TEMP", "24h", "en")
    frame, name = plot["value"], f"⚠ alarm #{aid}"
    assert name in set(frame["series"]) and plot["color_map"][name] == ALERT_COLOURS["alarm"]
    assert "value" in set(frame["series"])  # the readings are still there
    plot, _ = SensorHandlers(fake, fake.site).show("GH-1-TEMP", "24h", "en")  # no alert service: no spans
    assert not any(str(s).startswith("⚠") for s in plot["value"]["series"])
