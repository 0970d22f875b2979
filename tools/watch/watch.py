"""The site watch: every ``interval_s`` it looks at the readings since its last pass and raises
alerts through ``AlertStore.raise_alert`` (which deduplicates, escalates and keeps quiet periods).

Checks, each a function in ``CHECKS`` returning findings (keyword arguments of ``raise_alert``):
- ``limits``: excursions beyond the site profile's limits (``tools.sensors.excursions``), cause
  ``limit_<side>:<sensor>``, with the limit value and the document it comes from;
- ``sensor_faults``: instrument faults (``tools.watch.sensor_faults``), cause ``sensor_<kind>:<id>``,
  kept apart from process alarms;
- ``early_warning``: a per-asset anomaly score (``tools.watch.asset_watch``), cause ``anomaly:<asset>``,
  naming the sensors that contribute most.
- ``forecast``: time until an equipment sensor reaches its alarm (``tools.watch.forecast_check``),
  cause ``forecast_<side>:<sensor>``.

Each check reads a little before the window (``*_context_h``) because delays, merging of
excursions and a fault's usual movement need history, but raises only findings that reach into the
window, so a pass never re-raises what an earlier pass already saw. One bad sensor is logged and
skipped, never the pass. The cursor and the early-warning stream state are saved in
``state.json`` next to the models, so a restart continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tools.errors import ToolInputError
from tools.sensors.excursions import SEVERITY_RANK, sensor_excursions
from tools.watch.alerts import AlertStore
from tools.watch.asset_watch import AssetWatch
from tools.watch.early_warning import EarlyWarningConfig
from tools.watch.forecast_check import check_forecast
from tools.watch.sensor_faults import alert_fields, check_sensor, fmt_number
from tools.watch.settings import WatchSettings  # noqa: F401 - part of this module's interface

log = logging.getLogger(__name__)
SEVERITY = {1: "warning", 2: "alarm", 3: "critical"}  # excursion rank → alert severity


@dataclass
class WatchReport:
    start_ms: int
    end_ms: int
    findings: dict[str, int] = field(default_factory=dict)  # by check
    opened: list[dict[str, Any]] = field(default_factory=list)
    escalated: list[dict[str, Any]] = field(default_factory=list)
    updated: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)  # "check sensor: reason", the pass went on
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # early warning by asset: learning / watching
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Finding = dict[str, Any]  # keyword arguments of AlertStore.raise_alert
Check = Callable[["SiteWatch", int, int, int, list[str]], list[Finding] | None]  # None: not due this pass


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- checks --------------------------------------------------------------------------------------
def check_limits(w: "SiteWatch", start: int, end: int, now_ms: int, errors: list[str],
                 only: set[str] | None = None) -> list[Finding]:
    cfg, site = w.settings, w.site
    ctx = start - int(cfg.limit_context_h * 3_600_000)
    out, cache = [], {}
    for s in site.sensors:
        ls = site.limit_set(s)
        if ls is None or (only is not None and s.id not in only):
            continue
        try:
            found = sensor_excursions(w.store, site, s.id, ctx, end, SEVERITY_RANK[cfg.limit_min_severity],
                                      cfg.max_gap_s, cfg.merge_s, cache, valid=physical_range(cfg.faults, s))
        except Exception as exc:  # noqa: BLE001 - one bad series must not stop the watch
            log.warning("watch: limits of %s skipped: %s", s.id, exc)
            errors.append(f"limits {s.id}: {exc}")
            continue
        for x in found:
            if x.end < start and not x.ongoing:
                continue  # an earlier pass saw all of it
            levels = ls.at(x.period == "day")
            out.append({
                "target": x.asset or x.zone, "cause": f"limit_{x.direction}:{x.sensor_id}",
                "severity": SEVERITY[x.rank],
                "title": (f"{x.sensor_id} {'above' if x.direction == 'high' else 'below'} its {x.severity} limit "
                          f"{fmt_number(x.limit_value)} {x.unit} ({ls.source}): {'worst' if not x.ongoing else 'now at'} "
                          f"{fmt_number(x.worst_value)} {x.unit}").replace("  ", " "),
                "explanation": {
                    "type": "process_limit", "sensor": x.sensor_id, "metric": x.metric, "unit": x.unit,
                    "direction": x.direction, "severity_reached": x.severity, "reached_ms": x.reached,
                    "limit": {"name": x.limit_name, "value": x.limit_value, "period": x.period,
                              "levels": levels.thresholds() if levels else {}, "source": ls.source,
                              "documents": sorted({r.source for r in site.limits
                                                   if r.source and r.source in ls.source})},
                    "readings": {"start_ms": x.start, "end_ms": x.end, "duration_s": x.duration_s, "count": x.readings,
                                 "worst": x.worst_value, "worst_ms": x.worst_ts, "ongoing": x.ongoing}},
                # when the level counted: what a watch running live would have known at that moment
                "at": max(x.reached.values()) if x.reached else x.start})
    return out


def check_sensor_faults(w: "SiteWatch", start: int, end: int, now_ms: int, errors: list[str]) -> list[Finding]:
    cfg = w.settings
    if w.faults_from is not None:
        if now_ms - w.faults_from < cfg.faults_every_s * 1000:
            return None  # not due yet: the next run covers these readings
        start = min(start, w.faults_from)
    w.faults_from = end
    ctx = start - int(cfg.fault_context_h * 3_600_000)
    out = []
    for s in w.site.sensors:
        try:
            found = check_sensor(w.site, w.store, s.id, ctx, end, cfg.faults, now_ms)
            if found:
                ts, values = w.store.series(s.id, ctx, end)
                # a spike is judged only once half a window of readings follows it, so it may end
                # before this run's new readings and still be new (evals/watch_sim.py lost them all)
                late = (cfg.faults.spike_window // 2 + 1) * (float(np.median(np.diff(ts))) if ts.size > 1 else 0.0)
                faults = [f for f in found if f.end_ms >= start - (late if f.kind == "spike" else 0)]
                out += [alert_fields(w.site, f, cfg.faults, ts, values) for f in faults]
        except Exception as exc:  # noqa: BLE001
            log.warning("watch: instrument checks of %s skipped: %s", s.id, exc)
            errors.append(f"sensor_faults {s.id}: {exc}")
    return out


def check_early_warning(w: "SiteWatch", start: int, end: int, now_ms: int, errors: list[str]) -> list[Finding]:
    """Per asset with >= 2 sensors: learn, then score; ``w.model_status`` says which, by asset."""
    cfg = w.settings
    if not cfg.early_warning:
        return []
    grid_ms = cfg.grid_s * 1000
    out = []
    for asset in w.site.assets:
        sensors = [s.id for s in w.site.sensors if s.asset == asset.id]
        if len(sensors) < 2:
            continue
        try:
            aw = w.asset_watch(asset.id, sensors)
            period = cfg.reference_periods.get(asset.id)
            span = None if period is None else (int(period[0].timestamp() * 1000), int(period[1].timestamp() * 1000))
            fitted_now = aw.model is None
            if not aw.fit_if_ready(w.store, w.site, start, end, grid_ms, cfg.reference_h, span, w.ew_config):
                until = span[1] if span else (aw.first_row_ms + int(cfg.reference_h * 3_600_000)
                                              if aw.first_row_ms is not None else None)
                w.model_status[asset.id] = {"state": "learning", "reference_until_ms": until}
                continue
            if fitted_now:
                aw.save_model(w.models_dir)
                log.info("watch: early-warning model of %s fitted on %s → %s (%d sensors)", asset.id,
                         _iso(aw.reference[0]), _iso(aw.reference[1]), len(aw.sensors))
            t, alarm, scores = aw.score_new(w.store, w.site, end, grid_ms, cfg.persistence_k, cfg.persistence_n)
            w.model_status[asset.id] = {"state": "watching", "reference_ms": list(aw.reference),
                                        "sensors": list(aw.sensors), "rows_scored": int(len(t))}
        except Exception as exc:  # noqa: BLE001
            log.warning("watch: early warning of %s skipped: %s", asset.id, exc)
            errors.append(f"early_warning {asset.id}: {exc}")
            continue
        if not alarm.any():
            continue
        idx = np.flatnonzero(alarm)
        worst = int(idx[np.argmax(scores.score[idx])])
        top = scores.top_sensors(worst, 3)
        named = ", ".join(f"{sid} ({share:.0%})" for sid, share in top)
        out.append({
            "target": asset.id, "cause": f"anomaly:{asset.id}", "severity": cfg.anomaly_severity,
            "title": f"{asset.id} departs from its normal operation; most unusual: {named}",
            "explanation": {
                "type": "early_warning", "asset": asset.id, "top_sensors": [{"sensor": s, "share": round(p, 3)}
                                                                            for s, p in top],
                "score": round(float(scores.score[worst]), 3), "threshold": 1.0, "score_ms": int(t[worst]),
                "first_alarm_ms": int(t[idx[0]]), "rows_over": int(alarm.sum()),
                "persistence": f"{cfg.persistence_k} of {cfg.persistence_n} rows of {cfg.grid_s} s",
                "reference_ms": list(aw.reference), "sensors": aw.sensors,
                "values": {s: float(v) for s, v in zip(aw.sensors, _row_values(w, aw, int(t[worst])))}},
            "at": int(t[idx[0]])})
    return out


def _row_values(w: "SiteWatch", aw: AssetWatch, at: int) -> list[float]:
    latest = w.store.latest(aw.sensors, at + w.settings.grid_s * 1000)
    return [latest[s].value if s in latest else float("nan") for s in aw.sensors]


# The checks of one pass, in order; another check is one function with the same signature.
def physical_range(faults, sensor) -> tuple[float, float] | None:
    """What the instrument can read (per-sensor override, else by metric): beyond it is its fault."""
    own = faults.sensors.get(sensor.id)
    return (own.range if own is not None and own.range else None) or faults.ranges.get(sensor.metric)


CHECKS: list[tuple[str, Check]] = [("limits", check_limits), ("sensor_faults", check_sensor_faults),
                                   ("early_warning", check_early_warning), ("forecast", check_forecast)]


class SiteWatch:
    def __init__(self, site, sensor_store, alert_store: AlertStore, settings: WatchSettings | None = None,
                 models_dir: Path | None = None, checks: list[tuple[str, Check]] | None = None):
        self.site, self.store, self.alerts = site, sensor_store, alert_store
        self.settings = settings or WatchSettings()
        if self.settings.persistence_k > self.settings.persistence_n:
            raise ToolInputError("persistence_k must not exceed persistence_n")
        self.ew_config = EarlyWarningConfig(**self.settings.early_warning_config)
        self.models_dir = Path(models_dir) if models_dir else Path(alert_store.path).parent / "watch"
        self.checks = list(CHECKS if checks is None else checks)
        self.cursor: int | None = None
        self._fast_seen: dict[str, int] = {}  # the fast lane's newest reading looked at, per sensor
        self._assets: dict[str, AssetWatch] = {}
        self._saved_assets: dict[str, Any] = {}
        self.model_status: dict[str, dict[str, Any]] = {}
        self.faults_from: int | None = None  # readings from here on are not yet checked for instrument faults
        self.forecast_at: int | None = None  # when the forecasts last ran
        self._load_state()

    # -- state ---------------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.models_dir / "state.json"

    def _load_state(self) -> None:
        if not self._state_path.is_file():
            return
        try:
            data = json.loads(self._state_path.read_text(encoding="utf-8"))
            self.cursor = data.get("cursor")
            self.faults_from = data.get("faults_from")
            self._saved_assets = data.get("assets") or {}
        except (OSError, ValueError) as exc:  # lose the cursor, not the watch: the lookback covers it
            log.warning("watch: state %s unreadable (%s); starting from the lookback window", self._state_path, exc)

    def _save_state(self) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".json.tmp")
        state = {"cursor": self.cursor, "faults_from": self.faults_from,
                 "assets": {a: aw.state_dict() for a, aw in self._assets.items()}}
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self._state_path)

    def asset_watch(self, asset_id: str, sensors: list[str]) -> AssetWatch:
        if asset_id not in self._assets:
            aw = AssetWatch.load_model(self.models_dir, asset_id) or AssetWatch(asset_id, sensors)
            if asset_id in self._saved_assets:
                saved = self._saved_assets[asset_id]
                if aw.model is not None or saved.get("first_row_ms") is not None:
                    aw.load_state({k: v for k, v in saved.items() if aw.model is not None or k == "first_row_ms"})
                    aw.scored_to = aw.scored_to or (aw.reference[1] if aw.reference else None)
            self._assets[asset_id] = aw
        return self._assets[asset_id]

    # -- passes --------------------------------------------------------------------------------
    def run_once(self, now_ms: int | None = None) -> WatchReport:
        t0 = time.perf_counter()
        now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        start = self.cursor if self.cursor is not None else now_ms - int(self.settings.lookback_h * 3_600_000)
        end = now_ms + 1
        report = WatchReport(start, end)
        for name, check in self.checks:
            try:
                findings = check(self, start, end, now_ms, report.errors)
            except Exception as exc:  # noqa: BLE001 - a broken check must not stop the others
                log.exception("watch: check %s failed", name)
                report.errors.append(f"{name}: {exc}")
                continue
            if findings is None:
                continue
            report.findings[name] = len(findings)
            self._raise(name, findings, report)
        report.models = dict(self.model_status)
        self.cursor = end
        try:
            self._save_state()
        except OSError as exc:
            report.errors.append(f"state not saved: {exc}")
        report.ms = round((time.perf_counter() - t0) * 1000, 1)
        return report

    def _raise(self, name: str, findings: list[Finding], report: WatchReport) -> None:
        for f in findings:
            try:
                r = self.alerts.raise_alert(**f)
            except Exception as exc:  # noqa: BLE001
                log.warning("watch: alert %s/%s not raised: %s", f.get("target"), f.get("cause"), exc)
                report.errors.append(f"{name} {f.get('cause')}: {exc}")
                continue
            brief = {"id": r.alert.id, "target": r.alert.target, "cause": r.alert.cause,
                     "severity": r.alert.severity, "title": r.alert.title}
            if r.action == "opened":
                report.opened.append(brief)
            elif r.action == "escalated":
                report.escalated.append(brief | {"from": r.previous_severity})
            elif r.action == "suppressed":
                report.suppressed += 1
            else:
                report.updated += 1

    def run_fast(self, now_ms: int | None = None) -> WatchReport:
        """The fast lane between passes: each limited sensor's newest reading, and the full limit check
        (delays, periods, merging) only for the sensors whose newest value is beyond a level in either
        period. A reading beyond its alarm is an alert within seconds; the other checks wait for the pass.
        Leaves the pass's cursor alone: the next pass sees the same readings (and updates, not repeats)."""
        t0 = time.perf_counter()
        now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        start = self.cursor if self.cursor is not None else now_ms - int(self.settings.lookback_h * 3_600_000)
        report = WatchReport(start, now_ms + 1)
        min_rank = SEVERITY_RANK[self.settings.limit_min_severity]
        limited = {s.id: ls for s in self.site.sensors if (ls := self.site.limit_set(s)) is not None}
        suspects: set[str] = set()
        for sid, r in self.store.latest(list(limited)).items():
            if r.ts <= self._fast_seen.get(sid, start - 1):
                continue
            self._fast_seen[sid] = r.ts
            if any(lim is not None and lim.classify(r.value)[0] >= min_rank
                   for lim in (limited[sid].day, limited[sid].night)):
                suspects.add(sid)
        if suspects:
            findings = check_limits(self, start, now_ms + 1, now_ms, report.errors, only=suspects)
            report.findings["limits"] = len(findings)
            self._raise("limits", findings, report)
        report.ms = round((time.perf_counter() - t0) * 1000, 1)
        return report

    def run_forever(self, stop_event: threading.Event, on_report: Callable[[WatchReport], None] | None = None) -> None:
        """Pass after pass until ``stop_event`` is set; thread-friendly (waits on the event). Between
        passes, the fast lane (``run_fast``) every ``fast_limits_s``."""
        fast = self.settings.fast_limits_s
        next_pass = 0.0
        while not stop_event.is_set():
            due = time.monotonic() >= next_pass
            if due:
                next_pass = time.monotonic() + self.settings.interval_s
            try:
                report = self.run_once() if due else self.run_fast()
                if report.opened or report.escalated or report.errors:
                    log.info("watch: %d opened, %d escalated, %d errors in %.0f ms%s", len(report.opened),
                             len(report.escalated), len(report.errors), report.ms, "" if due else " (fast lane)")
                if on_report is not None and (due or report.opened or report.escalated):
                    on_report(report)
            except Exception:  # noqa: BLE001 - the watch outlives any one bad pass
                log.exception("watch: %s failed; trying again", "pass" if due else "fast lane")
            wait = next_pass - time.monotonic()
            stop_event.wait(max(0.0, min(wait, fast) if fast > 0 else wait))
