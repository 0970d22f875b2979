"""The day summary on a real sensor store: a simulated heater failure shows as cold nights with the
right size and length; a day inside the targets is 'in range'; gaps and a day without data are said,
with no invented numbers; the light sum from PPFD; the drain fraction 'not measured'."""

from __future__ import annotations

import pytest

from tools.advice.day_summary import day_window, summarize_day
from tools.advice.settings import AdviceSettings
from tools.errors import NotFoundError

from .days import DAY, fill_healthy, simulate_day


def _finding(summary, topic):
    return next((f for f in summary.findings if f.topic == topic), None)


def test_heater_failure_makes_cold_nights_with_the_right_magnitude(site, store):
    simulate_day(site, store, faults=["heater_failure:GH-1"])
    gh1 = summarize_day(site, store, "GH-1", DAY)
    cold = _finding(gh1, "air_temperature:night:low")
    assert gh1.status == "off" and cold is not None
    night = next(p for m in gh1.metrics if m.metric == "air_temperature" for p in m.periods if p.period == "night")
    assert cold.band == (16.0, 18.0) and "CG-TOM-01 §2.2" in cold.source
    assert cold.worst == night.min < 13.0  # below the alarm level, not only the target
    assert cold.beyond == pytest.approx(16.0 - night.min, abs=1e-6) and cold.beyond > 3
    assert cold.minutes > 5 * 60 and cold.alarm_minutes > 60  # most of the 11 h night
    assert night.mean < 13.0
    assert gh1.findings[0].metric == "air_temperature"  # the alarm-level finding comes first
    # the healthy house next door: its heating held the night setpoint
    gh2 = summarize_day(site, store, "GH-2", DAY)
    assert _finding(gh2, "air_temperature:night:low") is None
    night2 = next(p for m in gh2.metrics if m.metric == "air_temperature" for p in m.periods if p.period == "night")
    assert night2.below_target_min == 0 and 16.0 <= night2.mean <= 18.0


def test_a_day_inside_the_targets_is_in_range(site, store):
    fill_healthy(site, store, "GH-1")
    s = summarize_day(site, store, "GH-1", DAY)
    assert s.status == "in_range" and s.findings == [] and s.notes == []
    temp = next(m for m in s.metrics if m.metric == "air_temperature")
    assert temp.coverage == pytest.approx(1.0, abs=0.01)
    assert {p.period: p.mean for p in temp.periods} == {"day": 22.0, "night": 17.0}
    assert s.light["dli"] == 25.0 and s.light["how"].startswith("reported by GH-1-DLI")
    # 13 h of 600 µmol/m²/s integrated: 600e-6 × 13 × 3600 = 28.08 mol/m²
    assert s.light["dli_from_ppfd"] == pytest.approx(28.08, abs=0.2)
    assert s.drain == {"measured": False, "note": "not measured: no drain sensors in the site profile"}


def test_light_sum_from_ppfd_when_no_dli_was_reported_and_low_light_is_a_finding(site, store):
    fill_healthy(site, store, "GH-1", dli=None)
    s = summarize_day(site, store, "GH-1", DAY, AdviceSettings())
    assert s.light["how"].startswith("PPFD of GH-1-PAR") and s.light["dli"] == pytest.approx(28.08, abs=0.2)
    fill_healthy(site, store, "GH-2", dli=12.0)
    low = _finding(summarize_day(site, store, "GH-2", DAY), "dli:daily:low")
    assert low is not None and low.worst == 12.0 and low.beyond == pytest.approx(3.0) and low.band == (15.0, 25.0)


def test_gaps_are_said_and_a_day_without_data_has_no_numbers(site, store):
    start, end = day_window(site, DAY)
    fill_healthy(site, store, "GH-1", skip=(start + 2 * 3600_000, start + 12 * 3600_000))  # 10 h missing
    s = summarize_day(site, store, "GH-1", DAY)
    temp = next(m for m in s.metrics if m.metric == "air_temperature")
    assert temp.coverage == pytest.approx(14 / 24, abs=0.02) and temp.longest_gap_min >= 585
    assert any("GH-1-TEMP" in n and "59%" in n and "incomplete" in n for n in s.notes)

    empty = summarize_day(site, store, "GH-2", DAY)
    assert empty.status == "no_data" and empty.findings == []
    assert all(m.readings == 0 and m.periods == [] for m in empty.metrics)
    assert any("no readings" in n for n in empty.notes)
    assert empty.light == {"measured": False, "note": "no light readings for the day"}


def test_short_excursions_are_not_findings_but_alarms_are(site, store):
    from tools.sensors.store import Reading

    fill_healthy(site, store, "GH-1")
    start, _ = day_window(site, DAY)
    noon = start + 12 * 3600_000
    store.insert([Reading("GH-1-TEMP", noon + i * 300_000, 26.0) for i in range(3)])  # 15 min at 26 °C
    assert summarize_day(site, store, "GH-1", DAY).findings == []
    store.insert([Reading("GH-1-TEMP", noon + 3600_000, 33.0)])  # one reading above the 32 °C alarm
    hot = _finding(summarize_day(site, store, "GH-1", DAY), "air_temperature:day:high")
    assert hot is not None and hot.worst == 33.0 and hot.alarm_minutes == 5.0


def test_unknown_or_non_growing_zone(site, store):
    with pytest.raises(NotFoundError, match="GH-1, GH-2"):
        summarize_day(site, store, "PH-1", DAY)
    with pytest.raises(NotFoundError, match="known: GH-1, GH-2"):
        summarize_day(site, store, "GH-9", DAY)
