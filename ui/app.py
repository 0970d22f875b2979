"""The page: a header with the title, a one-line model badge (its details one tap away), how many
alerts are active, who is signed in and the language setting, then six tabs — ask, photo check,
sensors, work orders, alerts, documents (admins only when signed in).

``build_blocks(services, settings)`` returns the Blocks (not yet mounted); ``ui.mount`` mounts
it on the API's FastAPI app with the safety settings (``CSS``, ``HEAD``).
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from assistant.llm import short_reason
from assistant.redact import redact_text
from assistant.services import Services
from ui import advice_panel, alerts_panel, tab_admin, tab_chat, tab_inspect, tab_orders, tab_sensors
from ui.chat import escape_md
from ui.i18n import LANG_CHOICES, Labels, pick_lang, question_lang, t
from ui.login import LOGOUT_PATH, OPEN, PageAuth
from ui.sources_panel import KnownSources, PageImages
from ui.style import CSS, HEAD_STYLE

log = logging.getLogger(__name__)

__all__ = ["CSS", "HEAD", "build_blocks", "status_badge", "status_markdown"]

HEAD = '<meta name="viewport" content="width=device-width, initial-scale=1">' + HEAD_STYLE


def _model_state(services: Services) -> tuple[dict, dict] | None:
    try:
        info = services.readiness()
    except Exception as exc:  # noqa: BLE001
        log.warning("status not available: %s", exc)
        return None
    return info.get("model") or {}, info.get("index") or {}


def status_markdown(services: Services, lang: str) -> str:
    """The model mode (a visible note when answers are extracts) and the live index version."""
    state = _model_state(services)
    if state is None:
        return ""
    model, index = state
    if model.get("mode") == "extractive":
        # the first sentence: the whole how-to (paths, hashes) is for the admin's log, not a phone screen
        first = t(lang, "status.extractive", reason=escape_md(short_reason(model.get("reason") or "—")))
    else:
        first = t(lang, "status.llm", name=escape_md(model.get("name") or model.get("backend") or "?"))
    version = index.get("version")
    second = t(lang, "status.index", version=escape_md(version)) if version else t(lang, "status.noindex")
    return f"{first}  \n{second}"


def status_badge(services: Services, lang: str, admin: bool = False) -> str:
    """The header's one-line model badge (an HTML ``<details>``, no script): one tap opens why
    answers are extracts and the index version; administrators also get the full how-to (paths,
    URL, hash) that the first sentence leaves out."""
    state = _model_state(services)
    if state is None:
        return ""
    model, index = state
    e = html.escape
    version = index.get("version")
    reason = redact_text(model.get("reason") or "")
    name = model.get("name") or model.get("backend") or "?"
    if model.get("mode") == "loading" or model.get("loading"):
        kind, summary, first = "loading", t(lang, "badge.loading"), t(lang, "badge.loading")
    elif model.get("mode") == "extractive":
        kind, summary = "extractive", t(lang, "badge.extractive_short")
        first = t(lang, "status.extractive", reason=short_reason(reason or "—"))
    else:
        kind, summary, first = "llm", t(lang, "badge.llm_short", name=name), t(lang, "status.llm", name=name)
    if not version:
        summary = f"{summary} · {t(lang, 'badge.noindex')}"
    lines = [first, t(lang, "status.index", version=version) if version else t(lang, "status.noindex")]
    body = "".join(f"<p>{e(line)}</p>" for line in lines)
    if admin and kind == "extractive" and reason and reason != short_reason(reason):
        body += f"<p><b>{e(t(lang, 'status.admin'))}</b></p><pre>{e(reason)}</pre>"
    classes = f"onsite-badge {kind}" + ("" if version else " noindex")
    return (f'<details class="{classes}"><summary title="{e(summary)}"><span class="dot"></span>'
            f'<span class="onsite-badge-text">{e(summary)}</span></summary>'
            f'<div class="onsite-badge-details">{body}</div></details>')


def build_blocks(services: Services, settings: Any = None, auth: PageAuth | None = None) -> gr.Blocks:
    auth = auth or OPEN
    labels = Labels()
    pages = PageImages(KnownSources(services.knowledge))

    def tab(key: str, tab_id: str, visible: bool = True) -> gr.Tab:
        return labels.bind(gr.Tab(t("en", key), id=tab_id, elem_id=f"onsite-tab-{tab_id}", visible=visible), label=key)

    # Uploaded photos and documents do not pile up in Gradio's cache: hourly, anything older than a day goes.
    with gr.Blocks(title="onsite", analytics_enabled=False, fill_width=True, delete_cache=(3600, 86400)) as blocks:
        lang = gr.State("en")
        saved_lang = gr.BrowserState("auto", storage_key="onsite-lang")
        with gr.Row(elem_id="onsite-header", equal_height=False):
            labels.bind(gr.Markdown("## " + t("en", "app.title"), elem_id="onsite-title"),
                        value=lambda lg: "## " + t(lg, "app.title"))
            status = gr.HTML(elem_id="onsite-status", js_on_load=None)
            alerts_badge = alerts_panel.header_badge(services.alerts) if services.alerts is not None else None
            account = gr.Markdown(elem_id="onsite-account", visible=auth.required)
            labels.bind(gr.Button(link=LOGOUT_PATH, size="sm", scale=0, min_width=80, visible=auth.required,
                                  elem_id="onsite-logout"), value="auth.logout")
            lang_pick = labels.bind(gr.Radio(LANG_CHOICES, value="auto", scale=0, min_width=80, elem_id="onsite-lang",
                                             container=False), label="lang")

        def follow_question(message: Any, choice: str | None, current: str | None, request: gr.Request | None = None):
            """On Auto, the page takes the language of the question just asked (Chinese for a question
            mostly in Chinese, English for one in English) before the answer is written."""
            text = message.get("text") if isinstance(message, dict) else message
            wanted = question_lang(str(text or "")) if (choice or "auto") == "auto" else None
            if wanted is None or wanted == current:
                return current, gr.update(), *(gr.update() for _ in labels.components)
            return wanted, status_badge(services, wanted, auth.allows(request, "admin")), *labels.updates(wanted)

        with gr.Tabs(elem_id="onsite-tabs"):
            with tab("tab.chat", "chat") as chat_tab:
                chat = tab_chat.build(services, labels, lang, pages, auth, wire_later=True)
            with tab("tab.inspect", "inspect") as inspect_tab:
                inspect = tab_inspect.build(services.inspection, labels, lang, services.work_orders,
                                            [a.id for a in services.site.assets], auth)
            with tab("tab.sensors", "sensors") as sensors_tab:
                sensors = tab_sensors.build(services.sensors, services.site, labels, lang, services.alerts)
            with tab("tab.orders", "orders") as orders_tab:
                orders = tab_orders.build(services.work_orders, labels, lang, auth)
            with tab("tab.alerts", "alerts", visible=services.alerts is not None) as alerts_tab:
                alerts = alerts_panel.build(services.alerts, labels, lang, auth, alerts_badge) \
                    if services.alerts is not None else None
            with labels.bind(gr.Tab(advice_panel.w("en", "tab"), id="advice", elem_id="onsite-tab-advice",
                                    visible=advice_panel.available(services)),
                             label=lambda lg: advice_panel.w(lg, "tab")) as advice_tab:
                advice = advice_panel.build(services, labels, lang)
            # Signed in, the documents tab is shown to admins once the page knows who is there.
            with tab("tab.admin", "admin", visible=not auth.required) as admin_tab:
                admin = tab_admin.build(services.knowledge, labels, lang, auth)

        if alerts is not None:
            alerts_panel.start_polling(alerts)
        # every label is bound now: the question box may update them all
        chat["wire"]((follow_question, [lang_pick, lang], [lang, status, *labels.components]))

        def apply_lang(choice: str | None, request: gr.Request | None = None):
            """Language and, signed in, who is there: the account line and what their role may use
            (what is only hidden here is refused by the handlers too; looking is not logged as a refusal)."""
            accept = request.headers.get("accept-language") if request is not None else None
            chosen = choice if choice in ("auto", "zh", "en") else "auto"
            effective = pick_lang(chosen, accept)
            admin = auth.allows(request, "admin")
            updates = labels.updates(effective)
            for component, visible in ((admin_tab, admin), (orders["admin_only"], not admin)):
                updates[labels.components.index(component)]["visible"] = visible
            return (chosen, chosen, effective, status_badge(services, effective, admin),
                    auth.account_markdown(request, effective), gr.update(visible=admin), *updates)

        private = {"api_visibility": "private"}
        lang_outputs = [lang_pick, saved_lang, lang, status, account, orders["decision"], *labels.components]
        blocks.load(apply_lang, [saved_lang], lang_outputs, **private)
        lang_pick.input(apply_lang, [lang_pick], lang_outputs, **private)
        restore, restore_inputs, restore_outputs = chat["restore"]
        blocks.load(restore, [*restore_inputs, lang], restore_outputs, **private)

        def refresh_status(lg: str | None, request: gr.Request | None = None) -> str:
            return status_badge(services, lg or "en", auth.allows(request, "admin"))

        # Fresh state whenever a tab is opened (model and index, products, plot, orders, documents).
        chat_tab.select(refresh_status, [lang], [status], **private)
        inspect_tab.select(inspect["handlers"].refresh_all, [lang], inspect["refresh_outputs"], **private)
        sensors_tab.select(sensors["handlers"].show, [sensors["sensor"], sensors["window"], lang],
                           [sensors["plot"], sensors["summary"]], **private)
        orders_tab.select(orders["handlers"].refresh, [lang], orders["refresh_outputs"], **private)
        if alerts is not None:
            alerts_tab.select(alerts["handlers"].refresh, alerts["inputs"], alerts["outputs"], show_progress="hidden",
                              **private)
        admin_tab.select(admin["handlers"].refresh, [lang], [admin["report"], admin["index_line"]], **private)
        advice_tab.select(advice["show"], [lang], advice["outputs"], **private)
    return blocks
