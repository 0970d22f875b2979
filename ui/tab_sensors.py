"""The sensor tab: one sensor over a chosen window, with the site profile's limits drawn.

The limits are looked up for each point's time (``SiteProfile.limits_for``), so day and night
limits show as steps where they change. Alert periods (first seen to closed, else last seen) of
alerts on the sensor, its asset or its zone are shaded in the severity's colour: Gradio's native
line plot has no area mark, so each period is a translucent hatch of strokes from the bottom to
the top of the plotted values (dense enough to read as a band), one legend entry per alert.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import gradio as gr

from assistant.services import AlertService, SensorService
from ui.chat import error_message, escape_md
from ui.i18n import TEXT, Labels, t

log = logging.getLogger(__name__)

WINDOWS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
LIMIT_LINES = ("low", "high", "alarm_low", "alarm_high")
COLOURS = {"value": "#1f6feb", "low": "#d29922", "high": "#d29922", "alarm_low": "#cf222e", "alarm_high": "#cf222e"}
ALERT_COLOURS = {"info": "#0969da40", "warning": "#d2992250", "alarm": "#cf222e48", "critical": "#82071e60"}  # translucent
HATCH = 300  # strokes across the whole window: a span reads as shaded at every window length
MAX_ALERTS = 20  # drawn per plot, the most recent


def window_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(lang, f"win.{k}"), k) for k in WINDOWS]


def sensor_choices(sensors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f"{s.get('name') or s['id']} · {s.get('zone') or ''} ({s['id']})", s["id"]) for s in sensors]


def _local(ts: str) -> datetime:
    """An ISO time as the site's wall-clock time (the plot shows what the floor clock shows)."""
    return datetime.fromisoformat(ts).replace(tzinfo=None)


def series_rows(series: dict[str, Any], site: Any, lang: str) -> list[dict[str, Any]]:
    """Long-format rows ``{time, value, series}``: the bucket means, then each limit line."""
    rows: list[dict[str, Any]] = []
    names = {k: t(lang, "sens." + k) for k in ("value", *LIMIT_LINES)}
    for p in series.get("points") or []:
        if p.get("mean") is None:
            continue
        at = datetime.fromisoformat(p["ts"])
        rows.append({"time": _local(p["ts"]), "value": float(p["mean"]), "series": names["value"]})
        try:
            active = site.limits_for(series["id"], at)
        except Exception:  # noqa: BLE001 - a sensor without limits just has no lines
            active = None
        if active is None:
            continue
        for k in LIMIT_LINES:
            v = getattr(active.limit, k, None)
            if v is not None:
                rows.append({"time": _local(p["ts"]), "value": float(v), "series": names[k]})
    return rows


def _ms(iso: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat(str(iso)).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def sensor_alerts(alerts: AlertService | None, site: Any, sensor_id: str, start_ms: int, end_ms: int) -> list[dict]:
    """Alerts (any state) about this sensor, its asset or its zone that overlap [start_ms, end_ms]."""
    if alerts is None:
        return []
    sensor = site.sensor(sensor_id)
    subjects = {sensor.id, sensor.asset, sensor.zone} - {None}
    found: dict[int, dict] = {}
    for target in dict.fromkeys(x for x in (sensor.asset, sensor.zone) if x):
        for a in alerts.list_alerts(target=target, since=start_ms, limit=200)["alerts"]:
            if a["cause"].partition(":")[2] in subjects and a["first_seen"] <= end_ms:
                found[a["id"]] = a
    return sorted(found.values(), key=lambda a: a["first_seen"])[-MAX_ALERTS:]


def alert_label(alert: dict, lang: str) -> str:
    return f"⚠ {t(lang, 'sev.' + alert['severity'])} #{alert['id']}"


def alert_span_rows(alerts: list[dict], rows: list[dict[str, Any]], site: Any, start_ms: int, end_ms: int,
                    lang: str) -> list[dict[str, Any]]:
    """Rows that shade each alert's period: strokes alternating between the lowest and the highest
    plotted value, every window/HATCH, from first seen to closed (else last seen), clipped to the window."""
    values = [r["value"] for r in rows]
    if not values or end_ms <= start_ms:
        return []
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.02 or max(abs(hi) * 0.02, 0.5)
    lo, hi = lo - pad, hi + pad
    step = max(1, (end_ms - start_ms) // HATCH)
    out = []
    for a in alerts:
        a0 = max(int(a["first_seen"]), start_ms)
        a1 = min(int(a.get("closed_at") or a["last_seen"]), end_ms)
        if a1 < a0:
            continue
        a1 = max(a1, a0 + step)  # a single finding still shows
        name = alert_label(a, lang)
        for k, ms in enumerate(list(range(a0, a1, step)) + [a1]):
            at = datetime.fromtimestamp(ms / 1000, site.tz).replace(tzinfo=None)
            out.append({"time": at, "value": hi if k % 2 else lo, "series": name})
    return out


def colour_map(lang: str) -> dict[str, str]:
    return {t(lang, "sens." + k): c for k, c in COLOURS.items()}


def limits_text(series: dict[str, Any], site: Any, lang: str) -> str:
    now = series.get("limits_now") or {}
    shown = ", ".join(f"{t(lang, 'sens.' + k)} {v:g}" for k, v in now.items()
                      if k != "period" and isinstance(v, (int, float)))
    if not shown:
        return ""
    source = ""
    try:
        active = site.limits_for(series["id"], datetime.fromisoformat(series["to"]))
        source = active.source if active else ""
    except Exception:  # noqa: BLE001
        pass
    period = now.get("period")
    text = f"{t(lang, 'period.' + period)}: {shown}" if period in ("day", "night") else shown
    return t(lang, "sens.limits", text=escape_md(text), source=escape_md(source or "—"))


def status_words(latest: dict[str, Any], lang: str) -> str:
    """The reading's status in the page's language: "alarm (high)", "正常", "normal · stale"."""
    status = str(latest.get("status") or "")
    if not status:
        return "—"
    key = f"sstatus.{status}"
    words = t(lang, key) if key in TEXT else status.replace("_", " ")  # a site's own trip label as it is
    if latest.get("direction") in ("high", "low"):
        side = t(lang, "sdir." + latest["direction"])
        words += f"（{side}）" if lang == "zh" else f" ({side})"
    if latest.get("stale"):
        words += " · " + t(lang, "sstatus.stale")
    return words


def when(ts: Any) -> str:
    """An ISO time as the site's wall-clock date and minute ("2026-12-07 18:41"); as given if not ISO."""
    try:
        return _local(str(ts)).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return str(ts or "—")


def summary_markdown(latest: dict[str, Any] | None, series: dict[str, Any], n: int, lang: str) -> str:
    latest = latest or {}
    if not n:
        return t(lang, "sens.nodata", sensor=escape_md(series.get("name") or series.get("id") or ""))
    value = latest.get("value")
    return t(lang, "sens.summary", name=escape_md(series.get("name") or series["id"]), sensor=escape_md(series["id"]),
             value="—" if value is None else f"{value:g}", unit=escape_md(series.get("unit") or ""),
             ts=escape_md(when(latest.get("ts")) if latest.get("ts") else "—"),
             status=escape_md(status_words(latest, lang)), n=n)


class SensorHandlers:
    def __init__(self, sensors: SensorService, site: Any, alerts: AlertService | None = None):
        self.sensors_service = sensors
        self.site = site
        self.alerts = alerts

    def sensors(self) -> list[dict[str, Any]]:
        try:
            return list(self.sensors_service.list_sensors())
        except Exception as exc:  # noqa: BLE001
            log.warning("sensors not listed: %s", exc)
            return []

    def show(self, sensor_id: str | None, window: str | None, lang: str):
        """(plot update, summary markdown)."""
        import pandas as pd

        lang = lang or "en"
        empty = pd.DataFrame({"time": [], "value": [], "series": []})
        if not sensor_id:
            return gr.update(value=empty), ""
        span = WINDOWS.get(window or "24h", WINDOWS["24h"])
        try:
            end = self.sensors_service.now()  # the sensor tools' clock (simulated in tests)
        except Exception:  # noqa: BLE001
            end = None
        try:
            series = self.sensors_service.sensor_series(sensor_id, start=(end - span) if end else None, end=end)
            latest = self.sensors_service.sensor_latest(sensor_id)
        except Exception as exc:  # noqa: BLE001
            return gr.update(value=empty), error_message(exc, lang)
        rows = series_rows(series, self.site, lang)
        colours = colour_map(lang)
        start_ms, end_ms = _ms(series.get("from")), _ms(series.get("to"))
        if start_ms is not None and end_ms is not None:
            try:
                marked = sensor_alerts(self.alerts, self.site, sensor_id, start_ms, end_ms)
            except Exception as exc:  # noqa: BLE001 - the readings still show without their alerts
                log.warning("alerts of %s not read for the plot: %s", sensor_id, exc)
                marked = []
            rows += alert_span_rows(marked, rows, self.site, start_ms, end_ms, lang)
            colours |= {alert_label(a, lang): ALERT_COLOURS.get(a["severity"], "#6e778160") for a in marked}
        n = sum(1 for p in series.get("points") or [] if p.get("mean") is not None)
        frame = pd.DataFrame(rows) if rows else empty
        summary = summary_markdown(latest, series, n, lang)
        limits = limits_text(series, self.site, lang)
        title = f"{series.get('name') or sensor_id} ({series.get('unit') or ''})"
        return (gr.update(value=frame, y_title=series.get("unit") or None, x_title=t(lang, "sens.time"),
                          color_map=colours, title=title, color_title=t(lang, "sens.series")),
                summary + (f"\n\n{limits}" if limits else ""))


def build(sensors: SensorService, site: Any, labels: Labels, lang: gr.State,
          alerts: AlertService | None = None) -> dict[str, Any]:
    h = SensorHandlers(sensors, site, alerts)
    choices = sensor_choices(h.sensors())
    with gr.Row():
        sensor = labels.bind(gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, scale=3,
                                         elem_id="onsite-sensor"), label="sens.sensor")
        window = labels.bind(gr.Radio(choices=window_choices("en"), value="24h", scale=3, elem_id="onsite-window"),
                             label="sens.window", choices=window_choices)
        show = labels.bind(gr.Button(variant="primary", size="lg", scale=1, min_width=120, elem_id="onsite-sensor-show"),
                           value="sens.show")
    summary = gr.Markdown(elem_id="onsite-sensor-summary")
    plot = labels.bind(gr.LinePlot(x="time", y="value", color="series", height=420, x_title="time",
                                   elem_id="onsite-sensor-plot", color_map=colour_map("en")), label="sens.plot")
    for ev in (show.click, window.change, sensor.change):
        ev(h.show, [sensor, window, lang], [plot, summary], api_visibility="private", concurrency_limit=4,
           concurrency_id="sensors")
    return {"handlers": h, "sensor": sensor, "window": window, "plot": plot, "summary": summary}
