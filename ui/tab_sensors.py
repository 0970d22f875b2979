"""The sensor tab: one sensor over a chosen window, with the site profile's limits drawn.

The limits are looked up for each point's time (``SiteProfile.limits_for``), so day and night
limits show as steps where they change.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import gradio as gr

from assistant.services import SensorService
from ui.chat import error_message, escape_md
from ui.i18n import TEXT, Labels, t

log = logging.getLogger(__name__)

WINDOWS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
LIMIT_LINES = ("low", "high", "alarm_low", "alarm_high")
COLOURS = {"value": "#1f6feb", "low": "#d29922", "high": "#d29922", "alarm_low": "#cf222e", "alarm_high": "#cf222e"}


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
    def __init__(self, sensors: SensorService, site: Any):
        self.sensors_service = sensors
        self.site = site

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
        n = sum(1 for p in series.get("points") or [] if p.get("mean") is not None)
        frame = pd.DataFrame(rows) if rows else empty
        summary = summary_markdown(latest, series, n, lang)
        limits = limits_text(series, self.site, lang)
        title = f"{series.get('name') or sensor_id} ({series.get('unit') or ''})"
        return (gr.update(value=frame, y_title=series.get("unit") or None, x_title=t(lang, "sens.time"),
                          color_map=colour_map(lang), title=title, color_title=t(lang, "sens.series")),
                summary + (f"\n\n{limits}" if limits else ""))


def build(sensors: SensorService, site: Any, labels: Labels, lang: gr.State) -> dict[str, Any]:
    h = SensorHandlers(sensors, site)
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
