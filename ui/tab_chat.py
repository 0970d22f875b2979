"""The chat tab: conversation, scope, photo attachments, the approval box and the sources panel.

``ChatHandlers`` holds the event functions (plain methods, callable in tests with a stand-in
service); ``build`` lays the tab out and wires them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.services import Services
from assistant.types import Decision, owned_thread_id
from ui.chat import TurnView, error_message, escape_md, pending_markdown, user_messages
from ui.i18n import Labels, t
from ui.login import OPEN, PageAuth
from ui.photos import photo_bytes, uploaded
from ui.sources_panel import PageImages, find, source_choices, source_detail, sources_markdown

log = logging.getLogger(__name__)

STREAM_INTERVAL_S = 0.08  # at most ~12 updates a second while tokens stream
PHOTO_QUESTION = {"en": "Inspect this photo.", "zh": "检查这张照片。"}
UI_USER = "chat-page"


def scope_choices(items: list[Any], lang: str) -> list[tuple[str, str]]:
    """Dropdown choices for a scope: "whole site" first, then each zone or asset by name."""
    return [(t(lang, "scope.any"), "")] + [(f"{i.name} ({i.id})" if i.name else i.id, i.id) for i in items]


class ChatHandlers:
    def __init__(self, services: Services, pages: PageImages, upload_root: str | Path | None = None,
                 auth: PageAuth | None = None):
        self.services = services
        self.pages = pages
        self.upload_root = upload_root  # None: Gradio's upload folder
        self.auth = auth or OPEN  # who confirms: the signed-in person (any role), else a typed name

    # ---- helpers -------------------------------------------------------------------------------
    def _image(self, upload_id: str):
        try:
            return gr.Image(value=self.services.inspection.open_photo(upload_id), show_label=False, interactive=False,
                            buttons=["fullscreen"], height=320)
        except Exception as exc:  # noqa: BLE001 - a missing annotated copy must not end the turn
            log.info("annotated photo %s not shown: %s", upload_id, exc)
            return None

    def _panel(self, view: TurnView, lang: str) -> tuple:
        """Outputs of the sources panel and approval box for the current state of a turn."""
        a = view.answer or {}
        cited = a.get("cited") or []
        choices = source_choices(view.sources, cited, lang)
        return (
            sources_markdown(view.sources, cited, lang),
            gr.update(choices=choices, value=None),
            "",
            gr.update(value=None, visible=False),
            gr.update(visible=bool(view.pending)),
            pending_markdown(view.pending, lang),
            {"sources": view.sources, "cited": cited},
        )

    def _stream(self, events: Any, history: list, lang: str, cancel: threading.Event):
        view = TurnView(lang)
        last = 0.0
        try:
            for ev in events:
                view.apply(ev)
                now = time.monotonic()
                kind = ev.get("type") if isinstance(ev, dict) else ev.type
                if kind == "token" and now - last < STREAM_INTERVAL_S:
                    continue
                last = now
                yield view, history + view.messages(self._image)
        finally:
            cancel.set()  # a stopped page stops the model too
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if not view.finished:
            view.apply({"type": "error", "message": t(lang, "chat.stopped")})
        yield view, history + view.messages(self._image)

    # ---- events --------------------------------------------------------------------------------
    def _owned(self, thread_id: str, request: Any) -> tuple[str, str]:
        """(the service's conversation id, the asker): signed in, conversations belong to the
        person, so the next one to sign in on a shared tablet does not get them back."""
        principal = self.auth.principal(request) if request is not None else None
        if principal is None:
            return thread_id, UI_USER

        return owned_thread_id(principal.id, thread_id), principal.id

    def ask(self, message: dict | str | None, history: list | None, thread_id: str | None, zone: str | None,
            asset: str | None, lang: str, request: gr.Request | None = None):
        """Generator: chatbot, input box, thread id, then the sources panel and approval outputs."""
        lang = lang or "en"
        message = message if isinstance(message, dict) else {"text": message or "", "files": []}
        text = str(message.get("text") or "").strip()
        files = [f if isinstance(f, str) else (f.get("path") if isinstance(f, dict) else getattr(f, "path", None))
                 for f in message.get("files") or []]
        files = [f for f in files if f]
        history = list(history or [])
        if not text and not files:
            gr.Info(t(lang, "err.empty"))
            yield history, gr.update(), thread_id, *self._keep()
            return
        history = history + user_messages(text, files)
        cleared = gr.update(value={"text": "", "files": []})
        thread_id = thread_id or uuid.uuid4().hex  # known before the first event: approvals refer to it
        try:
            photos = [self.services.inspection.save_photo(photo_bytes(uploaded(p, self.upload_root)), Path(p).name)["image_id"]
                      for p in files]
            cancel = threading.Event()
            owned, asker = self._owned(thread_id, request)
            events = self.services.turns.ask(text or PHOTO_QUESTION.get(lang, PHOTO_QUESTION["en"]), thread_id=owned,
                                      scope={"zone": zone or None, "asset": asset or None}, photos=photos,
                                      user=asker, cancel=cancel)
        except Exception as exc:  # noqa: BLE001 - busy, invalid question, refused photo: say so in the chat
            history.append({"role": "assistant", "content": error_message(exc, lang)})
            yield history, cleared, thread_id, *self._keep()
            return
        yield history, cleared, thread_id, *self._keep()
        for view, shown in self._stream(events, history, lang, cancel):
            yield shown, gr.update(), thread_id, *self._panel(view, lang)

    def decide(self, approved: bool, history: list | None, thread_id: str | None, by: str, reason: str, lang: str,
               request: Any = None):
        """Confirm or decline what the assistant proposed in this conversation. Signed in, any role
        may (the person asking confirms) and the decision carries their name; open, a typed name."""
        lang = lang or "en"
        history = list(history or [])
        access = self.auth.access(request, "operator")
        if not access.allowed:
            gr.Warning(t(lang, access.reason))
            yield history, *self._keep()
            return
        by, reason = (access.by or by or "").strip(), (reason or "").strip()
        user = access.principal.id if access.principal is not None else by
        if not by:
            gr.Warning(t(lang, "approval.need_name"))
            yield history, *self._keep()
            return
        if not approved and not reason:
            gr.Warning(t(lang, "approval.need_reason"))
            yield history, *self._keep()
            return

        try:
            cancel = threading.Event()
            decision = Decision(approved, by, reason or t(lang, "approval.default_reason"))
            events = self.services.turns.resume(self._owned(thread_id or "", request)[0], decision, user=user)
        except Exception as exc:  # noqa: BLE001
            history.append({"role": "assistant", "content": error_message(exc, lang)})
            yield history, *self._keep()
            return
        for view, shown in self._stream(events, history, lang, cancel):
            yield shown, *self._panel(view, lang)

    def approve(self, history, thread_id, by, reason, lang, request: gr.Request | None = None):
        yield from self.decide(True, history, thread_id, by, reason, lang, request)

    def reject(self, history, thread_id, by, reason, lang, request: gr.Request | None = None):
        yield from self.decide(False, history, thread_id, by, reason, lang, request)

    def open_source(self, n: Any, turn: dict | None, lang: str):
        """The picked source in full and, for a PDF page, its image."""
        s = find((turn or {}).get("sources") or [], n)
        image = self.pages.image(s) if s else None
        return source_detail(s, lang or "en"), gr.update(value=image, visible=image is not None)

    def restore(self, thread_id: str | None, lang: str, request: gr.Request | None = None):
        """After a reload: the conversation this browser had (its questions and answers, and what
        waits for approval), or nothing. (chatbot, thread id, approval box, approval text)"""
        lang = lang or "en"
        if not thread_id:
            return [], None, gr.update(visible=False), ""
        try:
            owned = self._owned(thread_id, request)[0]
            history = self.services.turns.history(owned)
            pending = self.services.turns.pending(owned)
        except Exception as exc:  # noqa: BLE001 - an unknown or malformed id: start afresh
            log.info("conversation %s not restored: %s", thread_id, exc)
            return [], None, gr.update(visible=False), ""
        shown = [{"role": m["role"], "content": escape_md(m.get("content") or "")} for m in history
                 if m.get("role") in ("user", "assistant")]
        return shown, thread_id if shown else None, gr.update(visible=bool(pending)), pending_markdown(pending, lang)

    def new_conversation(self, lang: str):
        lang = lang or "en"
        return ([], None, sources_markdown([], [], lang), gr.update(choices=[], value=None), "",
                gr.update(value=None, visible=False), gr.update(visible=False), "", {})

    @staticmethod
    def _keep() -> tuple:
        return (gr.update(),) * 7


def build(services: Services, labels: Labels, lang: gr.State, pages: PageImages, auth: PageAuth | None = None,
          wire_later: bool = False) -> dict[str, Any]:
    """Lay the tab out and wire its events. ``wire_later``: the question box's events are wired
    when the caller calls ``result["wire"](prelude)``, once every component exists; ``prelude`` is
    (fn, extra inputs, outputs) run on a question before the answer starts (the page follows the
    question's language with it); ``fn`` gets the input box first."""
    auth = auth or OPEN
    handlers = ChatHandlers(services, pages, auth=auth)
    zones, assets = list(services.site.zones), list(services.site.assets)
    thread = gr.State(None)
    saved_thread = gr.BrowserState("", storage_key="onsite-thread")  # the conversation survives a reload
    turn = gr.State({})
    # The chat, then the question box right under it: both stay on the first screen of a phone; the
    # scope pickers and buttons come after the box, the sources panel after the chat on a narrow screen.
    with gr.Row(equal_height=False, elem_id="onsite-chat-row"):
        with gr.Column(scale=3, min_width=360):
            chatbot = labels.bind(
                gr.Chatbot(height="62vh", min_height=220, layout="panel", sanitize_html=True, render_markdown=True,
                           latex_delimiters=[], allow_tags=False, feedback_options=None, buttons=["copy_all"],
                           allow_file_downloads=False, elem_id="onsite-chat", autoscroll=True),
                label="chat.label")
            with gr.Group(visible=False, elem_id="onsite-approval") as approval_box:
                approval_md = gr.Markdown()
                with gr.Row():
                    by = labels.bind(gr.Textbox(max_length=80, scale=1, elem_id="onsite-approval-by",
                                                visible=not auth.required), label="approval.by")
                    reason = labels.bind(gr.Textbox(max_length=300, scale=2, elem_id="onsite-approval-reason"),
                                         label="approval.reason")
                with gr.Row():
                    approve_btn = labels.bind(gr.Button(variant="primary", size="lg", elem_id="onsite-approve"),
                                              value="approve")
                    reject_btn = labels.bind(gr.Button(variant="stop", size="lg", elem_id="onsite-reject"), value="reject")
            box = labels.bind(
                gr.MultimodalTextbox(file_types=["image"], file_count="multiple", sources=["upload"], lines=1,
                                     max_lines=6, show_label=False, submit_btn=True, stop_btn=False,
                                     elem_id="onsite-input", max_plain_text_length=2000),
                placeholder="chat.input")
            with gr.Row(elem_id="onsite-chat-actions"):
                stop_btn = labels.bind(gr.Button(size="lg", scale=1, min_width=100, elem_id="onsite-stop"),
                                       value="chat.stop")
                new_btn = labels.bind(gr.Button(size="lg", scale=1, min_width=100, elem_id="onsite-new"), value="chat.new")
            with labels.bind(gr.Accordion(t("en", "chat.scope"), open=False, elem_id="onsite-scope"), label="chat.scope"):
                with gr.Row():
                    zone = labels.bind(gr.Dropdown(choices=scope_choices(zones, "en"), value="", scale=1, min_width=140,
                                                   elem_id="onsite-zone"),
                                       label="chat.zone", choices=lambda lg: scope_choices(zones, lg))
                    asset = labels.bind(gr.Dropdown(choices=scope_choices(assets, "en"), value="", scale=1, min_width=140,
                                                    elem_id="onsite-asset"),
                                        label="chat.asset", choices=lambda lg: scope_choices(assets, lg))
        with gr.Column(scale=2, min_width=300, elem_id="onsite-sources"):
            pick = labels.bind(gr.Radio(choices=[], elem_id="onsite-source-pick"), label="sources.open")
            detail_md = gr.Markdown(elem_id="onsite-source-detail")
            page_img = labels.bind(gr.Image(visible=False, interactive=False, type="pil", format="png",
                                            elem_id="onsite-page-image", buttons=["fullscreen"]),
                                   label="sources.page_image")
            sources_md = labels.bind(gr.Markdown(sources_markdown([], [], "en"), elem_id="onsite-sources-list"),
                                     value=lambda lg: sources_markdown([], [], lg))
    panel = [sources_md, pick, detail_md, page_img, approval_box, approval_md, turn]
    ask_inputs, ask_outputs = [box, chatbot, thread, zone, asset, lang], [chatbot, box, thread, *panel]
    decide_inputs = [chatbot, thread, by, reason, lang]
    approve_ev = approve_btn.click(handlers.approve, decide_inputs, [chatbot, *panel], api_visibility="private",
                                   concurrency_id="turn")
    reject_ev = reject_btn.click(handlers.reject, decide_inputs, [chatbot, *panel], api_visibility="private",
                                 concurrency_id="turn")
    pick.change(handlers.open_source, [pick, turn, lang], [detail_md, page_img], api_visibility="private")

    def wire(prelude: tuple[Any, list, list] | None = None):
        if prelude is None:
            submit = box.submit(handlers.ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="turn")
        else:
            fn, extra, outputs = prelude
            submit = box.submit(fn, [box, *extra], outputs, api_visibility="private").then(
                handlers.ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="turn")
        stop_btn.click(None, None, None, cancels=[submit, approve_ev, reject_ev], api_visibility="private")
        new_btn.click(handlers.new_conversation, [lang], [chatbot, thread, *panel], cancels=[submit],
                      api_visibility="private")
        return submit

    submit = None if wire_later else wire()
    thread.change(lambda t: t or "", [thread], [saved_thread], api_visibility="private", queue=False)
    return {"handlers": handlers, "chatbot": chatbot, "box": box, "submit": submit, "wire": wire,
            "restore": (handlers.restore, [saved_thread], [chatbot, thread, approval_box, approval_md])}
