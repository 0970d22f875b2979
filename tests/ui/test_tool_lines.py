"""The sensor tools' English lines shown in Chinese on a Chinese page, from the tools' real output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools.base import ToolRegistry
from tools.sensors.store import Reading, SensorStore, to_ms
from tools.sensors.tools import SensorLatest
from tools.site import load_site_profile
from ui.tool_lines import localize

SITE = load_site_profile(Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml")
NOW = datetime(2025, 4, 15, 4, 0, tzinfo=UTC)  # daytime at the site


@pytest.mark.parametrize("english, chinese", [
    ("GH-2-TEMP: the reading is within limits (taken just now) — GH-2-TEMP 21.2 °C (normal 20–24, day) [6]",
     "GH-2-TEMP：读数在正常范围内（刚刚读取） — GH-2-TEMP 21.2 °C （正常 20–24，白天） [6]"),
    ("GH-2: all 9 readings within limits (oldest taken 3 min ago)", "GH-2：全部 9 个读数在正常范围内（最早的读数于 3 分钟前读取）"),
    ("GH-2: all 9 readings within limits (all taken just now)", "GH-2：全部 9 个读数在正常范围内（均为刚刚读取）"),
    ("GH-2: 9 sensors, 2 to look at — GH-2-TEMP 24.1 °C warning (above 24, day); GH-2-RH stale (last reading 2 h ago)",
     "GH-2：9 个传感器，2 项需要关注 — GH-2-TEMP 24.1 °C 预警（高于 24，白天）; GH-2-RH 数据过时（最后读数于 2 小时前）"),
    ("P-101: 7 sensors, 1 to look at — P-101 stopped (its readings are not judged)",
     "P-101：7 个传感器，1 项需要关注 — P-101 已停机（其读数不作判断）"),
    ("GH-1-TEMP: 1 sensor, 1 to look at — GH-1-TEMP 6.7 °C emergency (below 10, night)",
     "GH-1-TEMP：1 个传感器，1 项需要关注 — GH-1-TEMP 6.7 °C 紧急（低于 10，夜间）"),
])
def test_the_known_phrases_are_chinese(english, chinese):
    assert localize(english, "zh") == chinese
    assert localize(english, "en") == english


def test_other_text_is_left_as_it_is():
    doc = "Flow below 20 m³/h is an alarm. Normal range: 40–55 m³/h. Check the data sheet."
    assert localize(doc, "zh") == doc


def test_what_the_tool_writes_today_is_translated(tmp_path):
    """From the tool's own output, so a change of its wording shows here, not on a Chinese page."""
    store = SensorStore(tmp_path / "s.sqlite")
    store.insert([Reading("GH-2-TEMP", to_ms(NOW - timedelta(seconds=10)), 22.0),
                  Reading("GH-2-RH", to_ms(NOW - timedelta(hours=3)), 70.0)])
    registry = ToolRegistry([SensorLatest(SITE, store, clock=lambda: NOW, stale_after_s=600)])
    ok = registry.call("sensor_latest", {"target": "GH-2-TEMP"}).summary
    zone = registry.call("sensor_latest", {"target": "GH-2"}).summary
    store.close()
    assert localize(ok, "zh").startswith("GH-2-TEMP：读数在正常范围内（刚刚读取） — GH-2-TEMP 22.0 °C （正常 ")
    shown = localize(zone, "zh")
    assert shown.startswith("GH-2：9 个传感器，") and "GH-2-RH 数据过时（最后读数于 3 小时前）" in shown
    assert "GH-2-CO2 无数据" in shown and "sensor" not in shown and "stale" not in shown
