"""Early-warning evaluation on time-series sets in the shared format (shared/evaldata/FORMAT.md,
kind ``timeseries``): per file, fit on its first ``reference_rows`` rows, score the whole file as a
stream, and count the test part only.

Point figures follow SKAB's protocol (all files' test parts pooled): F1, false alarm rate = false
positives / negatives, missed alarm rate = false negatives / positives. Event figures say more to
an operator: each anomaly (a contiguous labelled stretch) is detected when an alarm falls inside it,
with the delay from its first row; a false alert event is an alarmed stretch that touches no
anomaly, counted per hour of normal test data.

Alert figures count what an operator is paged for, as the watch's ``AlertStore`` would: an alarmed
stretch opens an alert; the operator is taken to close it as soon as the alarm clears (the watch
never closes one itself, a person does: this gives the most pages); a stretch starting within the
quiet period (``AlertSettings.quiet_s``) after that close is suppressed, not a new alert. An alert
whose stretch touches no anomaly is a false alert event; an anomaly is alerted when an opened (not
suppressed) stretch overlaps it. Files are separate runs: each starts with no alert.

The same run scores a plain Hotelling T² (standardised sensors, full covariance, no smoothing, no
persistence, threshold the 99th percentile of the reference's own scores) as the baseline.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ValidationError
from tools.errors import ToolError
from tools.watch.alerts import AlertSettings
from tools.watch.early_warning import EarlyWarningConfig, fit_model
from tools.watch.scoring import persistent, stretches

LABELS = ("anomaly", "changepoint")
PERSIST_K, PERSIST_N = 5, 10


def read_set(folder: Path) -> tuple[dict, list[tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray]]]:
    """(dataset.json, [(file name, sensors, seconds, readings, anomaly labels)])."""
    folder = Path(folder)
    info_path = folder / "dataset.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{folder} is not a time-series set: cannot read dataset.json ({exc}); see FORMAT.md") from None
    if info.get("kind") != "timeseries":
        raise ValidationError(f"{folder} is not a time-series set: dataset.json kind is {info.get('kind')!r}, not 'timeseries'")
    if not isinstance(info.get("reference_rows"), int) or info["reference_rows"] < 1:
        raise ValidationError(f"{info_path}: reference_rows must be a positive whole number")
    files = sorted((folder / "series").glob("*.csv"))
    if not files:
        raise ValidationError(f"{folder} is not a time-series set: no series/*.csv in it")
    return info, [_read_series(p) for p in files]


def _read_series(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise ValidationError(f"{path}: no readings")
    head = rows[0]
    if not head or head[0] != "timestamp" or "anomaly" not in head:
        raise ValidationError(f"{path}: columns must be timestamp, the sensors, then anomaly (see FORMAT.md)")
    sensors = [c for c in head[1:] if c not in LABELS]
    cols = [head.index(s) for s in sensors]
    a = head.index("anomaly")
    try:
        t0 = None
        secs, values, labels = [], [], []
        for r in rows[1:]:
            ts = datetime.fromisoformat(r[0])
            t0 = t0 or ts
            secs.append((ts - t0).total_seconds())
            values.append([float(r[c]) for c in cols])
            labels.append(int(float(r[a])))
    except (ValueError, IndexError) as exc:
        raise ValidationError(f"{path}: row {len(secs) + 2} is malformed ({exc})") from None
    return path.name, sensors, np.asarray(secs), np.asarray(values, dtype=float), np.asarray(labels, dtype=bool)


def _hotelling(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Plain T² alarms: standardised, full covariance, threshold at the reference's 99th percentile."""
    mu, sd = ref.mean(axis=0), ref.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    zr, z = (ref - mu) / sd, (x - mu) / sd
    prec = np.linalg.pinv(np.atleast_2d(np.cov(zr, rowvar=False)))
    t2 = lambda m: np.einsum("ij,jk,ik->i", m, prec, m)  # noqa: E731
    return t2(z) > np.quantile(t2(zr), 0.99)


def alert_openings(secs: np.ndarray, alarm: np.ndarray, quiet_s: float) -> list[tuple[int, int, int | None]]:
    """Alarmed stretches as the AlertStore sees them: (first, last + 1, row where an alert opens or
    None when suppressed). A stretch starting within ``quiet_s`` of the last close (the end of the
    last opened alert's stretch) is suppressed; suppressed findings do not move the close, so one
    that lasts past the quiet period opens an alert when the period ends, as the watch would."""
    out: list[tuple[int, int, int | None]] = []
    closed_at = None
    for a, b in stretches(alarm):
        free = a if closed_at is None else a + int(np.searchsorted(secs[a:b], closed_at + quiet_s))
        opened = free if free < b else None
        if opened is not None:
            closed_at = float(secs[b - 1])
        out.append((a, b, opened))
    return out


def figures(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], quiet_s: float | None = None) -> dict[str, Any]:
    """Point, event and alert figures over (seconds, labels, alarms) of test parts, pooled."""
    quiet_s = AlertSettings().quiet_s if quiet_s is None else quiet_s
    tp = fp = fn = tn = 0
    events = detected = false_events = 0
    alerts = false_alerts = alerted = 0
    delays: list[float] = []
    normal_s = 0.0
    for secs, y, alarm in parts:
        tp += int(np.sum(alarm & y)); fp += int(np.sum(alarm & ~y))
        fn += int(np.sum(~alarm & y)); tn += int(np.sum(~alarm & ~y))
        step = float(np.median(np.diff(secs))) if len(secs) > 1 else 1.0
        normal_s += int(np.sum(~y)) * step
        for a, b in stretches(y):
            events += 1
            hit = np.flatnonzero(alarm[a:b])
            if len(hit):
                detected += 1
                delays.append(float(secs[a + hit[0]] - secs[a]))
        false_events += sum(1 for a, b in stretches(alarm) if not y[a:b].any())
        opened = [(o, b) for _, b, o in alert_openings(secs, alarm, quiet_s) if o is not None]
        alerts += len(opened)
        false_alerts += sum(1 for o, b in opened if not y[o:b].any())
        alerted += sum(1 for a, b in stretches(y) if any(o < b and e > a for o, e in opened))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {
        "f1": None if f1 is None else round(f1, 4),
        "far": round(fp / (fp + tn), 4) if fp + tn else None,
        "mar": round(fn / (fn + tp), 4) if fn + tp else None,
        "events": events, "events_detected": detected,
        "median_delay_s": statistics.median(delays) if delays else None,
        "false_events": false_events,
        "false_events_per_hour": round(false_events / (normal_s / 3600), 3) if normal_s else None,
        "normal_hours": round(normal_s / 3600, 3),
        "alert_events": alerts, "events_alerted": alerted, "false_alert_events": false_alerts,
        "false_alert_events_per_hour": round(false_alerts / (normal_s / 3600), 3) if normal_s else None,
        "quiet_s": quiet_s,
    }


def evaluate_watch(dataset_dir: Path, config: EarlyWarningConfig | None = None,
                   k: int = PERSIST_K, n: int = PERSIST_N, quiet_s: float | None = None) -> dict[str, Any]:
    info, series = read_set(dataset_dir)
    ref_rows = info["reference_rows"]
    ours, base, per_file = [], [], []
    score_s, scored_rows, stream_ms = 0.0, 0, 0.0
    for name, sensors, secs, x, y in series:
        if len(x) <= ref_rows:
            raise ValidationError(f"{name}: {len(x)} rows, no test part after the {ref_rows} reference rows")
        if y[:ref_rows].any():
            raise ValidationError(f"{name}: anomalies inside the reference rows; the reference must be normal")
        try:
            model = fit_model(x[:ref_rows], sensors, config)
            start = time.perf_counter()
            scores, _ = model.score(x)
            alarm = persistent(scores.over, k, n)
            score_s += time.perf_counter() - start
        except ToolError as exc:
            raise ValidationError(f"{name}: {exc.user_message}") from None
        scored_rows += len(x)
        if not per_file:  # one file again row by row, as the watch sees readings arrive
            state, start = None, time.perf_counter()
            for row in x:
                _, state = model.score(row[None, :], state)
            stream_ms = 1000 * (time.perf_counter() - start) / len(x)
        test = slice(ref_rows, None)
        ours.append((secs[test], y[test], alarm[test]))
        base.append((secs[test], y[test], _hotelling(x[:ref_rows], x)[test]))
        fig = figures([ours[-1]], quiet_s)
        over = np.flatnonzero(alarm[test] & y[test])
        top = scores.top_sensors(ref_rows + int(over[0]), 2) if len(over) else []
        per_file.append({"file": name, **{key: fig[key] for key in ("f1", "far", "mar", "events_detected",
                                                                   "median_delay_s", "false_events",
                                                                   "events_alerted", "false_alert_events")},
                         "slow_sensors": [s for s, slow in zip(sensors, model.slow) if slow],
                         "first_alarm_top_sensors": [s for s, _ in top]})
    result = {"dataset": info.get("name") or Path(dataset_dir).name, "files": len(series),
              "method": "MEWMA shift + spread channels on robust-scaled, clipped features (slow sensors as rates), "
                        "reference-max thresholds, "
                        f"{k} of {n} persistence",
              **figures(ours, quiet_s),
              "ms_per_row": round(1000 * score_s / max(scored_rows, 1), 4),
              "rows_per_s": round(scored_rows / score_s) if score_s else None,
              "ms_per_row_streamed": round(stream_ms, 4),
              "config": vars(config or EarlyWarningConfig()) | {"persist_k": k, "persist_n": n},
              "baseline": {"method": "Hotelling T², threshold at the reference's 99th percentile", **figures(base, quiet_s)},
              "per_file": per_file}
    return result
