"""Days for the advice tests: filled by the simulator, or with chosen values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from tools.advice.day_summary import day_window
from tools.sensors.simulator import simulate
from tools.sensors.store import Reading, SensorStore
from tools.site import SiteProfile

SAMPLE_PROFILE = Path(__file__).resolve().parents[3] / "knowledge" / "samples" / "site-profile.toml"
DAY = date(2026, 3, 10)  # a spring day (the simulator's weather)


def simulate_day(site: SiteProfile, store: SensorStore, day: date = DAY, faults=(), seed: int = 1) -> None:
    start, _ = day_window(site, day)
    simulate(site, store, hours=24, faults=faults, seed=seed, speed=1e9, start=datetime.fromtimestamp(start / 1000, UTC))


HEALTHY = {"air_temperature": (22.0, 17.0), "relative_humidity": (75.0, 75.0), "co2": (900.0, 600.0),
           "substrate_moisture": (62.0, 62.0), "substrate_ec": (3.9, 3.9), "feed_ec": (3.0, 3.0), "feed_ph": (5.8, 5.8)}


def fill_healthy(site: SiteProfile, store: SensorStore, zone: str, day: date = DAY, step_s: int = 300,
                 skip: tuple[int, int] | None = None, dli: float = 25.0) -> None:
    """Every climate and root-zone sensor of ``zone`` inside the fruiting and flowering targets all
    day (day / night values), PAR 600 µmol/m²/s in the light period, and the climate computer's DLI."""
    start, end = day_window(site, day)
    rows = []
    sensors = [s for s in site.sensors if s.zone == zone and s.asset is None]
    for ts in range(start, end, step_s * 1000):
        if skip and skip[0] <= ts < skip[1]:
            continue
        is_day = site.is_day(zone, datetime.fromtimestamp(ts / 1000, UTC))
        for s in sensors:
            if s.metric in HEALTHY:
                rows.append(Reading(s.id, ts, HEALTHY[s.metric][0 if is_day else 1]))
            elif s.metric == "par":
                rows.append(Reading(s.id, ts, 600.0 if is_day else 0.0))
    for s in sensors:
        if s.metric == "dli" and dli is not None:
            rows.append(Reading(s.id, end - 5 * 3600_000, dli))
    store.insert(rows)
