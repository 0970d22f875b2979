"""The page: a header with the model / index state, who is signed in and the language setting,
then five tabs — ask, photo check, sensors, work orders, documents (admins only when signed in).

``build_blocks(services, settings)`` returns the Blocks (not yet mounted); ``ui.mount`` mounts
it on the API's FastAPI app with the safety settings.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from assistant.llm import short_reason
from assistant.services import Services
from ui import tab_admin, tab_chat, tab_inspect, tab_orders, tab_sensors
from ui.chat import escape_md
from ui.i18n import LANG_CHOICES, Labels, pick_lang, t
from ui.login import LOGOUT_PATH, OPEN, PageAuth
from ui.sources_panel import KnownSources, PageImages

log = logging.getLogger(__name__)

# Large type and tap targets for a tablet on the floor.
CSS = """
.gradio-container { font-size: 18px; }
.gradio-container button { min-height: 52px; font-size: 1.1rem; }
.gradio-container button[role="tab"] { min-height: 48px; font-size: 1.15rem; padding: 0 1.1rem; }
.gradio-container input[type="text"], .gradio-container textarea { font-size: 1.1rem; }
#onsite-chat .message { font-size: 1.1rem; line-height: 1.55; }
#onsite-source-pick label { min-height: 44px; font-size: 1rem; }
#onsite-insp-verdict h2 { font-size: 2rem; }
#onsite-header { align-items: center; }
#onsite-status { font-size: 1rem; }
"""
HEAD = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def status_markdown(services: Services, lang: str) -> str:
    """The model mode (a visible note when answers are extracts) and the live index version."""
    try:
        info = services.readiness()
    except Exception as exc:  # noqa: BLE001
        log.warning("status not available: %s", exc)
        return ""
    model = info.get("model") or {}
    index = info.get("index") or {}
    if model.get("mode") == "extractive":
        # the first sentence: the whole how-to (paths, hashes) is for the admin's log, not a phone screen
        first = t(lang, "status.extractive", reason=escape_md(short_reason(model.get("reason") or "—")))
    else:
        first = t(lang, "status.llm", name=escape_md(model.get("name") or model.get("backend") or "?"))
    version = index.get("version")
    second = t(lang, "status.index", version=escape_md(version)) if version else t(lang, "status.noindex")
    return f"{first}  \n{second}"


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
        with gr.Row(elem_id="onsite-header"):
            labels.bind(gr.Markdown("## " + t("en", "app.title")), value=lambda lg: "## " + t(lg, "app.title"))
            status = gr.Markdown(elem_id="onsite-status")
            account = gr.Markdown(elem_id="onsite-account", visible=auth.required)
            labels.bind(gr.Button(link=LOGOUT_PATH, size="sm", scale=0, min_width=120, visible=auth.required,
                                  elem_id="onsite-logout"), value="auth.logout")
            lang_pick = labels.bind(gr.Radio(LANG_CHOICES, value="auto", scale=0, min_width=260, elem_id="onsite-lang"),
                                    label="lang")
        with gr.Tabs(elem_id="onsite-tabs"):
            with tab("tab.chat", "chat") as chat_tab:
                chat = tab_chat.build(services, labels, lang, pages, auth)
            with tab("tab.inspect", "inspect") as inspect_tab:
                inspect = tab_inspect.build(services.inspection, labels, lang)
            with tab("tab.sensors", "sensors") as sensors_tab:
                sensors = tab_sensors.build(services.sensors, services.site, labels, lang)
            with tab("tab.orders", "orders") as orders_tab:
                orders = tab_orders.build(services.work_orders, labels, lang, auth)
            # Signed in, the documents tab is shown to admins once the page knows who is there.
            with tab("tab.admin", "admin", visible=not auth.required) as admin_tab:
                admin = tab_admin.build(services.knowledge, labels, lang, auth)

        def apply_lang(choice: str | None, request: gr.Request | None = None):
            """Language and, signed in, who is there: the account line and what their role may use
            (what is only hidden here is refused by the handlers too)."""
            accept = request.headers.get("accept-language") if request is not None else None
            chosen = choice if choice in ("auto", "zh", "en") else "auto"
            effective = pick_lang(chosen, accept)
            admin = auth.access(request, "admin").allowed
            updates = labels.updates(effective)
            for component, visible in ((admin_tab, admin), (orders["admin_only"], not admin)):
                updates[labels.components.index(component)]["visible"] = visible
            return (chosen, chosen, effective, status_markdown(services, effective),
                    auth.account_markdown(request, effective), gr.update(visible=admin), *updates)

        private = {"api_visibility": "private"}
        lang_outputs = [lang_pick, saved_lang, lang, status, account, orders["decision"], *labels.components]
        blocks.load(apply_lang, [saved_lang], lang_outputs, **private)
        lang_pick.input(apply_lang, [lang_pick], lang_outputs, **private)
        restore, restore_inputs, restore_outputs = chat["restore"]
        blocks.load(restore, [*restore_inputs, lang], restore_outputs, **private)
        # Fresh state whenever a tab is opened (model and index, products, plot, orders, documents).
        chat_tab.select(lambda lg: status_markdown(services, lg or "en"), [lang], [status], **private)
        inspect_tab.select(inspect["handlers"].refresh, [lang], [inspect["product"], inspect["verdict"]], **private)
        sensors_tab.select(sensors["handlers"].show, [sensors["sensor"], sensors["window"], lang],
                           [sensors["plot"], sensors["summary"]], **private)
        orders_tab.select(orders["handlers"].refresh, [lang], orders["refresh_outputs"], **private)
        admin_tab.select(admin["handlers"].refresh, [lang], [admin["report"], admin["index_line"]], **private)
    return blocks
