"""The page's alerts: a badge in the header (how many alerts are active, coloured by the worst)
and a list in its own tab with Acknowledge (anyone signed in) and Close (admins), both kept
fresh without a reload by a ``gr.Timer`` that asks the ``AlertService`` every few seconds.

Polling (not the SSE stream) because the page lives in Gradio's event loop: one count and one
short list per tick (a few ms of SQLite) is cheap, and a new alert shows within ``POLL_S``.
Roles are checked in the handlers per event (what is hidden is refused too); on an open page
(no API keys, loopback only) nobody is signed in and the acting person is recorded as ``PAGE_USER``.
"""

from __future__ import annotations

import html
import time
from typing import Any

import gradio as gr

from assistant.services import AlertService
from ui.chat import error_message, escape_md
from ui.i18n import Labels, t
from ui.login import OPEN, PageAuth

POLL_S = 1.0  # an alert shows on the page within about this long (the target: 2 s)
SHOWN = 50  # the list shows the newest active alerts; the API pages through all of them
PAGE_USER = "page"
SEVERITIES = ("info", "warning", "alarm", "critical")
COLUMNS = ("id", "severity", "state", "target", "title", "last_seen", "count")


def highest(counts: dict[str, int]) -> str | None:
    return next((s for s in reversed(SEVERITIES) if counts.get(s)), None)


def alert_badge(counts: dict[str, int] | None, lang: str) -> str:
    """The header badge: "3 alerts" with the worst severity's colour, "No alerts" in green, or
    nothing when the alerts cannot be read (the page still works). A phone shows the number only
    (``.n``; the header has no room for words), others the words (``.word``)."""
    if counts is None:
        return ""
    total, worst = sum(counts.values()), highest(counts)
    text = t(lang, "alerts.badge", n=total) if total else t(lang, "alerts.badge_none")
    title = ", ".join(f"{t(lang, f'sev.{s}')}: {counts[s]}" for s in reversed(SEVERITIES) if counts.get(s)) or text
    e = html.escape
    return (f'<span class="onsite-alerts-badge {worst or "none"}" title="{e(title)}" role="status">'
            f'<span class="dot"></span><span class="n">{total}</span><span class="word">{e(text)}</span></span>')


def _when(ms: Any) -> str:
    try:
        return time.strftime("%m-%d %H:%M", time.localtime(int(ms) / 1000))
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def alert_rows(alerts: list[dict[str, Any]], lang: str) -> list[list[str]]:
    return [[str(a["id"]), t(lang, f"sev.{a['severity']}"), t(lang, f"alerts.state.{a['state']}"), str(a["target"]),
             str(a["title"])[:200], _when(a.get("last_seen")), str(a.get("count", 1))] for a in alerts]


def alert_choices(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f"#{a['id']} · {a['severity']} · {a['target']} · {str(a['title'])[:40]}", str(a["id"])) for a in alerts]


class AlertHandlers:
    def __init__(self, alerts: AlertService, auth: PageAuth | None = None):
        self.alerts = alerts
        self.auth = auth or OPEN

    def refresh(self, pick: str | None, lang: str, request: gr.Request | None = None, note: str | None = None):
        """(badge, table, picker, close controls, message); the message is left alone unless ``note``."""
        import pandas as pd

        lang = lang or "en"
        admin = self.auth.allows(request, "admin")
        try:
            counts = self.alerts.alert_counts()
            active = self.alerts.list_alerts(state="active", limit=SHOWN)["alerts"]
        except Exception as exc:  # noqa: BLE001 - the page keeps working without alerts
            return "", gr.update(), gr.update(), gr.update(visible=admin), error_message(exc, lang)
        choices = alert_choices(active)
        keep = pick if pick in {c[1] for c in choices} else (choices[0][1] if choices else None)
        frame = pd.DataFrame(alert_rows(active, lang), columns=[t(lang, f"alerts.col.{c}") for c in COLUMNS])
        message = gr.update() if note is None else note
        return (alert_badge(counts, lang), gr.update(value=frame), gr.update(choices=choices, value=keep),
                gr.update(visible=admin), message)

    def _act(self, role: str, pick: str | None, lang: str, request: Any, do) -> tuple:
        lang = lang or "en"
        access = self.auth.access(request, role)
        if not access.allowed:
            return self.refresh(pick, lang, request, t(lang, access.reason))
        if not pick:
            return self.refresh(pick, lang, request, t(lang, "alerts.need_pick"))
        who = access.by or PAGE_USER
        try:
            alert = do(pick, who)
        except Exception as exc:  # noqa: BLE001 - e.g. someone else closed it a moment ago (409)
            return self.refresh(pick, lang, request, error_message(exc, lang))
        done = t(lang, f"alerts.done.{alert['state']}", id=alert["id"], by=escape_md(who))
        return self.refresh(pick, lang, request, done)

    def acknowledge(self, pick: str | None, lang: str, request: gr.Request | None = None):
        return self._act("operator", pick, lang, request, self.alerts.acknowledge_alert)

    def close(self, pick: str | None, note: str, lang: str, request: gr.Request | None = None):
        return self._act("admin", pick, lang, request,
                         lambda alert_id, who: self.alerts.close_alert(alert_id, who, (note or "").strip()))


def header_badge(alerts: AlertService) -> gr.HTML:
    """The badge, made where it stands in the header; ``build`` keeps it fresh."""
    return gr.HTML(alert_badge(_counts(alerts), "en"), elem_id="onsite-alerts-badge")


def build(alerts: AlertService, labels: Labels, lang: gr.State, auth: PageAuth | None = None,
          badge: gr.HTML | None = None) -> dict[str, Any]:
    """The list (in the alerts tab), sharing its refresh with the header ``badge`` (``start_polling``)."""
    auth = auth or OPEN
    h = AlertHandlers(alerts, auth)
    badge = badge if badge is not None else header_badge(alerts)
    with gr.Column(elem_id="onsite-alerts"):
        table = gr.Dataframe(headers=[t("en", f"alerts.col.{c}") for c in COLUMNS], interactive=False, wrap=True,
                             elem_id="onsite-alerts-table")
        pick = labels.bind(gr.Dropdown(choices=[], elem_id="onsite-alert-pick"), label="alerts.pick")
        with gr.Row():
            ack = labels.bind(gr.Button(variant="primary", size="lg", elem_id="onsite-alert-ack"), value="alerts.ack")
            with gr.Column(visible=not auth.required, elem_id="onsite-alert-close-box") as close_box:
                note = labels.bind(gr.Textbox(max_length=2000, elem_id="onsite-alert-note"), label="alerts.note")
                close = labels.bind(gr.Button(variant="stop", size="lg", elem_id="onsite-alert-close"),
                                    value="alerts.close")
        message = gr.Markdown(elem_id="onsite-alerts-message")
    outputs = [badge, table, pick, close_box, message]
    private = {"api_visibility": "private"}
    ack.click(h.acknowledge, [pick, lang], outputs, concurrency_id="alerts", show_progress="minimal", **private)
    close.click(h.close, [pick, note, lang], outputs, concurrency_id="alerts", show_progress="minimal", **private)
    return {"handlers": h, "badge": badge, "outputs": outputs, "inputs": [pick, lang]}


def start_polling(panel: dict[str, Any]) -> gr.Timer:
    """The timer that keeps the badge and the list fresh. Made outside the tabs: a tab's content
    is only mounted once it is opened, and a timer that is not mounted never ticks."""
    timer = gr.Timer(POLL_S)
    timer.tick(panel["handlers"].refresh, panel["inputs"], panel["outputs"], show_progress="hidden",
               api_visibility="private")
    return timer


def _counts(alerts: AlertService) -> dict[str, int] | None:
    try:
        return alerts.alert_counts()
    except Exception:  # noqa: BLE001
        return None
