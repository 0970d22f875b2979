"""The work-order tab: the orders waiting for a decision, and a supervisor approving or rejecting one.

Every decision carries the supervisor's name and a reason (the work-order store refuses one
without them) and goes to the order's history. With sign-in (``ui.login``) anyone signed in sees
the list, only an admin may decide (checked here, per event), and the name is the signed-in
admin's; the typed name is used only when the page is open (no API keys configured).
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from assistant.services import WorkOrderService
from ui.chat import error_message, escape_md
from ui.i18n import Labels, t
from ui.login import OPEN, PageAuth

COLUMNS = ("id", "asset", "priority", "problem", "requested_by", "created")


def headers(lang: str) -> list[str]:
    return [t(lang, f"col.{c}") for c in COLUMNS]


def _when(ts: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts)))
    except (TypeError, ValueError):
        return ""


def order_rows(orders: list[dict[str, Any]]) -> list[list[str]]:
    """Table rows (plain text: the Dataframe shows cells as text)."""
    return [[str(o.get("id", "")), str(o.get("asset", "")), str(o.get("priority", "")), str(o.get("problem", ""))[:200],
             str(o.get("requested_by", "")), _when(o.get("created_at"))] for o in orders]


def order_choices(orders: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f"{o['id']} · {o.get('asset', '')} · {str(o.get('problem', ''))[:40]}", o["id"]) for o in orders]


class OrderHandlers:
    def __init__(self, work_orders: WorkOrderService, auth: PageAuth | None = None):
        self.work_orders = work_orders
        self.auth = auth or OPEN

    def _pending(self) -> list[dict[str, Any]]:
        return list(self.work_orders.list_work_orders("pending"))

    def refresh(self, lang: str, note: str = ""):
        """(table, order picker, message)."""
        import pandas as pd

        lang = lang or "en"
        try:
            orders = self._pending()
        except Exception as exc:  # noqa: BLE001
            return gr.update(), gr.update(), error_message(exc, lang)
        frame = pd.DataFrame(order_rows(orders), columns=headers(lang))
        choices = order_choices(orders)
        message = note or ("" if orders else t(lang, "orders.none"))
        return (gr.update(value=frame), gr.update(choices=choices, value=choices[0][1] if choices else None), message)

    def decide(self, approve: bool, order_id: str | None, by: str, reason: str, lang: str, request: Any = None):
        lang = lang or "en"
        access = self.auth.access(request, "admin")
        if not access.allowed:
            return gr.update(), gr.update(), t(lang, access.reason)
        by, reason = (access.by or by or "").strip(), (reason or "").strip()
        if not order_id:
            return gr.update(), gr.update(), t(lang, "orders.need_pick")
        if not by:
            return gr.update(), gr.update(), t(lang, "approval.need_name")
        if not approve and not reason:
            return gr.update(), gr.update(), t(lang, "approval.need_reason")
        try:
            order = self.work_orders.decide_work_order(order_id, approve, by, reason or t(lang, "approval.default_reason"))
        except Exception as exc:  # noqa: BLE001
            return (*self.refresh(lang)[:2], error_message(exc, lang))
        note = t(lang, "orders.decided", id=escape_md(order.get("id", order_id)), status=escape_md(order.get("status", "")),
                 by=escape_md(by))
        return self.refresh(lang, note)

    def approve(self, order_id, by, reason, lang, request: gr.Request | None = None):
        return self.decide(True, order_id, by, reason, lang, request)

    def reject(self, order_id, by, reason, lang, request: gr.Request | None = None):
        return self.decide(False, order_id, by, reason, lang, request)


def build(work_orders: WorkOrderService, labels: Labels, lang: gr.State, auth: PageAuth | None = None) -> dict[str, Any]:
    auth = auth or OPEN
    h = OrderHandlers(work_orders, auth)
    signed = auth.required  # decision controls appear for admins once the page knows who is there
    with gr.Row():
        title = labels.bind(gr.Markdown("### " + t("en", "orders.title")), value=lambda lg: "### " + t(lg, "orders.title"))
        refresh = labels.bind(gr.Button(size="lg", scale=0, min_width=140, elem_id="onsite-orders-refresh"),
                              value="orders.refresh")
    table = gr.Dataframe(headers=headers("en"), interactive=False, wrap=True, elem_id="onsite-orders")
    admin_only = labels.bind(gr.Markdown(t("en", "orders.admin_only"), visible=False, elem_id="onsite-orders-admin-only"),
                             value="orders.admin_only")
    with gr.Column(visible=not signed, elem_id="onsite-order-decision") as decision:
        pick = labels.bind(gr.Dropdown(choices=[], elem_id="onsite-order-pick"), label="orders.pick")
        with gr.Row():
            by = labels.bind(gr.Textbox(max_length=80, visible=not signed, elem_id="onsite-order-by"), label="orders.by")
            reason = labels.bind(gr.Textbox(max_length=300), label="orders.reason")
        with gr.Row():
            approve = labels.bind(gr.Button(variant="primary", size="lg", elem_id="onsite-order-approve"), value="approve")
            reject = labels.bind(gr.Button(variant="stop", size="lg", elem_id="onsite-order-reject"), value="reject")
    message = gr.Markdown(elem_id="onsite-orders-message")
    outputs = [table, pick, message]
    refresh.click(h.refresh, [lang], outputs, api_visibility="private")
    approve.click(h.approve, [pick, by, reason, lang], outputs, api_visibility="private", concurrency_id="orders")
    reject.click(h.reject, [pick, by, reason, lang], outputs, api_visibility="private", concurrency_id="orders")
    return {"handlers": h, "title": title, "refresh_outputs": outputs, "decision": decision, "admin_only": admin_only}
