"""Alerts as push messages: each alert opened, and each escalation, becomes one ``PushMessage``
(updates, suppressed findings, acknowledgements and closes page nobody).

The key ``alert:{id}:{action}:{seq}`` names the change, so a re-read after a restart enqueues
nothing new; the severity is the one of the change (an alert escalated since it opened is paged
twice, each time with the severity it had then). The title is short (what and where, in the
zone's language), the body the alert's own text: its title, the readings, the limit and the
document it comes from, and the first checks when the explainer has added them.
"""

from __future__ import annotations

from typing import Any

from tools.push.channel import PushMessage
from tools.watch.alerts import AlertChange, AlertStore

PAGED = ("opened", "escalated")

# what the cause kind (the part of a cause before ':') says, short
WHAT: dict[str, tuple[str, str]] = {  # kind: (zh, en)
    "limit_high": ("超上限", "above its limit"), "limit_low": ("低于下限", "below its limit"),
    "anomaly": ("运行异常", "abnormal operation"), "forecast_high": ("预计将超限", "heading for its limit"),
    "forecast_low": ("预计将低于下限", "heading for its low limit"),
    "sensor_flatline": ("传感器读数不变", "sensor flatline"), "sensor_stuck": ("传感器卡滞", "sensor stuck"),
    "sensor_dropout": ("传感器无数据", "sensor dropout"), "sensor_spike": ("传感器尖峰", "sensor spikes"),
    "sensor_out_of_range": ("传感器超量程", "sensor out of range"),
}
SEVERITY_WORDS = {"info": ("提示", "info"), "warning": ("警告", "warning"), "alarm": ("报警", "alarm"),
                  "critical": ("紧急", "critical")}
ESCALATED = ("升级", "escalated")


class AlertSource:
    name = "alerts"

    def __init__(self, store: AlertStore, site: Any = None, default_lang: str = "zh", batch: int = 100):
        self.store, self.site, self.default_lang, self.batch = store, site, default_lang, batch

    def start_cursor(self) -> int:
        """Where a first start begins: after the newest change (earlier alerts are not paged)."""
        return self.store.cursor()

    def messages_since(self, cursor: int) -> tuple[list[PushMessage], int]:
        changes = self.store.changes_since(cursor, self.batch)
        messages = [self.message(c) for c in changes if c.action in PAGED]
        return messages, (changes[-1].seq if changes else cursor)

    def message(self, change: AlertChange) -> PushMessage:
        alert, detail = change.alert, change.detail or {}
        severity = (detail.get("to") if change.action == "escalated" else detail.get("severity")) or alert.severity
        lang = self.lang(alert.target)
        i = 0 if lang == "zh" else 1
        kind, _, subject = alert.cause.partition(":")
        what = WHAT.get(kind, (kind.replace("_", " "),) * 2)[i]
        sep = "：" if i == 0 else ": "
        title = f"[{SEVERITY_WORDS.get(severity, (severity,) * 2)[i]}] {alert.target}"
        title += f" {subject}" if subject and subject != alert.target else ""
        title += f"{sep}{what}" + (f" ({ESCALATED[i]})" if change.action == "escalated" else "")
        return PushMessage(
            key=f"alert:{alert.id}:{change.action}:{change.seq}", kind="alert", target=alert.target,
            severity=severity, title=title[:120], body=body_text(alert.title, alert.explanation, lang),
            created_ms=change.ts, lang=lang, link=f"pages/alerts/detail?id={alert.id}",
            fields=_fields(alert, severity, change))

    def lang(self, target: str) -> str:
        """The zone's language (a ``lang`` of the zone, else of the site) or the default."""
        site = self.site
        if site is None:
            return self.default_lang
        zone = None
        try:
            zone = site.zone(site.asset(target).zone)
        except (StopIteration, AttributeError, KeyError):
            try:
                zone = site.zone(target)
            except (StopIteration, AttributeError, KeyError):
                pass
        found = getattr(zone, "lang", None) or getattr(site, "lang", None)
        return found if found in ("zh", "en") else self.default_lang


def body_text(title: str, explanation: dict[str, Any], lang: str) -> str:
    """The alert's title, then what its explanation holds that a person reads: a written text or
    summary, the limit with its source, the readings' worst value, the first checks (cited)."""
    zh = lang == "zh"
    lines = [title]
    e = explanation if isinstance(explanation, dict) else {}
    for k in ("text", "summary"):
        if isinstance(e.get(k), str) and e[k].strip():
            lines.append(e[k].strip())
    limit = e.get("limit") if isinstance(e.get("limit"), dict) else {}
    if limit.get("value") is not None:
        unit = e.get("unit") or ""
        src = limit.get("source") or ""
        lines.append((f"限值 {limit['value']} {unit}" if zh else f"Limit {limit['value']} {unit}").replace("  ", " ")
                     + (f"（来源：{src}）" if zh and src else f" (source: {src})" if src else ""))
    readings = e.get("readings") if isinstance(e.get("readings"), dict) else {}
    if readings.get("worst") is not None:
        lines.append(f"{'最差值' if zh else 'Worst'} {readings['worst']} {e.get('unit') or ''}".strip())
    checks = e.get("checks") if isinstance(e.get("checks"), list) else []
    for c in checks[:3]:
        if isinstance(c, dict) and c.get("text"):
            cite = c.get("citation")
            if isinstance(cite, dict):
                cite = " ".join(str(cite[k]) for k in ("doc", "section") if cite.get(k))
            elif not isinstance(cite, str):
                cite = ""
            lines.append(f"- {c['text']}" + (f" [{cite}]" if cite else ""))
    return "\n".join(lines)


def _fields(alert: Any, severity: str, change: AlertChange) -> dict[str, Any]:
    e = alert.explanation if isinstance(alert.explanation, dict) else {}
    limit = e.get("limit") if isinstance(e.get("limit"), dict) else {}
    readings = e.get("readings") if isinstance(e.get("readings"), dict) else {}
    value = readings.get("worst", e.get("score", e.get("level")))
    out = {"alert_id": alert.id, "target": alert.target, "cause": alert.cause, "severity": severity,
           "action": change.action, "title": alert.title, "first_seen": alert.first_seen,
           "last_seen": alert.last_seen, "sensor": e.get("sensor"), "value": value,
           "limit": limit.get("value"), "unit": e.get("unit"), "source": limit.get("source"),
           "eta_s": e.get("eta_s")}
    return {k: v for k, v in out.items() if v is not None}
