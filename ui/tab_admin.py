"""The documents tab: add documents, rebuild the index with a progress bar, see a per-file report,
roll back to the previous version.

The rebuild runs as a background job of the service (the page only follows it), so the
assistant keeps answering from the live version until the new one is published.

With sign-in (``ui.login``) the tab is shown to admins only, and every handler checks the role
of the person behind the event itself (a hidden tab is not a permission).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.errors import user_message
from assistant.services import KnowledgeAdmin
from knowledge.provenance import describe
from ui.chat import error_message, escape_md
from ui.i18n import Labels, t
from ui.login import OPEN, PageAuth
from ui.photos import uploaded

DOCUMENT_TYPES = [".pdf", ".md", ".markdown", ".txt", ".html", ".htm", ".docx"]
POLL_S = 0.5
MAX_WAIT_S = 6 * 3600
REPORT_COLUMNS = ("file", "result", "pages", "chunks", "detail")


NO_PAGES = "—"  # Markdown, text, HTML and Word files have no pages (only a PDF counts them)


def pages_cell(pages: Any) -> str:
    """A PDF's page count, "—" for a format without pages (the index records None for those).
    Text, so the column is one type: a mix of numbers and "—" confuses the table."""
    return str(pages) if isinstance(pages, int) and pages > 0 else NO_PAGES


def report_headers(lang: str) -> list[str]:
    return [t(lang, f"col.{c}") for c in REPORT_COLUMNS]


def _name(path: str | None) -> str:
    return (path or "").replace("\\", "/").rsplit("/", 1)[-1]


def report_rows(status: dict[str, Any], job: dict[str, Any] | None, lang: str) -> list[list[Any]]:
    """One row per file: indexed documents (pages, chunks, warnings), then the skipped files with
    the reason (from the finished job, else from the live version's record)."""
    rows: list[list[Any]] = []
    for d in status.get("documents") or []:
        detail = [str(w) for w in d.get("warnings") or []]
        if d.get("added_by"):  # provenance: who added the document and when
            detail.insert(0, describe(d, lang))
        rows.append([_name(d.get("source")), t(lang, "file.ok"), pages_cell(d.get("pages")), d.get("chunks") or 0,
                     "; ".join(detail)])
    failures = (job or {}).get("failures") if job and job.get("state") == "done" else status.get("failures")
    for f in failures or []:
        rows.append([_name(f.get("source")), t(lang, "file.failed"), "", 0, str(f.get("reason") or "")])
    return rows


def status_markdown(status: dict[str, Any], lang: str) -> str:
    live = status.get("live")
    if not live:
        return t(lang, "status.noindex")
    docs = len(status.get("documents") or [])
    line = t(lang, "status.index", version=escape_md(live))
    return f"{line} · {docs} docs · {status.get('chunks', 0)} chunks" + conflicts_markdown(status, lang)


def conflicts_markdown(status: dict[str, Any], lang: str) -> str:
    """The statements that contradict the site's safety rules, each with the rule and who added
    the document: an admin decides whether the document stays."""
    conflicts = status.get("conflicts") or []
    if not conflicts:
        return ""
    zh = lang == "zh"
    head = (f"\n\n**⚠ {status.get('conflicts_count', len(conflicts))} 处内容与现场安全规定相矛盾**（回答以规定为准并指出该文档）："
            if zh else f"\n\n**⚠ {status.get('conflicts_count', len(conflicts))} statement(s) contradict the site's "
            "safety rules** (answers give the rule and name the document):")
    lines = [head]
    for c in conflicts:
        added = describe(c, lang)
        who = f" ({escape_md(added)})" if added else ""
        against = "与之矛盾：" if zh else "contradicts"
        lines.append(f"- `{escape_md(_name(c.get('source')))}`{who} — {escape_md(c.get('sentence') or '')} "
                     f"— {against} `{escape_md(_name(c.get('rule_source')))}` «{escape_md(c.get('rule_title') or '')}»: "
                     f"{escape_md(c.get('rule_sentence') or '')}")
    return "\n".join(lines)


def job_markdown(job: dict[str, Any], lang: str) -> str:
    if job.get("state") == "failed":
        return t(lang, "admin.failed", reason=escape_md(job.get("error") or "?"))
    if job.get("state") == "done":
        return t(lang, "admin.done", version=escape_md(job.get("version") or "?"))
    return t(lang, "admin.progress", stage=escape_md(job.get("stage") or ""), done=job.get("done", 0),
             total=job.get("total", 0) or "?")


class AdminHandlers:
    def __init__(self, knowledge: KnowledgeAdmin, poll_s: float = POLL_S, upload_root: str | Path | None = None,
                 auth: PageAuth | None = None):
        self.knowledge = knowledge
        self.poll_s = poll_s
        self.upload_root = upload_root  # None: Gradio's upload folder
        self.auth = auth or OPEN

    def _refused(self, request: Any, lang: str) -> str | None:
        """None when the person behind ``request`` is an admin (or the page is open), else why not."""
        access = self.auth.access(request, "admin")
        return None if access.allowed else t(lang, access.reason)

    def _report(self, lang: str, job: dict[str, Any] | None = None):
        import pandas as pd

        try:
            status = self.knowledge.index_status()
        except Exception:  # noqa: BLE001
            status = {}
        return pd.DataFrame(report_rows(status, job, lang), columns=report_headers(lang)), status_markdown(status, lang)

    def refresh(self, lang: str, request: gr.Request | None = None):
        """(report table, index status line)."""
        if self._refused(request, lang or "en"):
            return gr.update(), ""
        return self._report(lang or "en")

    def save(self, files: list[Any] | None, lang: str, request: gr.Request | None = None) -> str:
        lang = lang or "en"
        if refused := self._refused(request, lang):
            return refused
        principal = self.auth.access(request, "admin").principal
        added_by = principal.id if principal is not None else "chat page"
        paths = [f if isinstance(f, str) else getattr(f, "name", None) or getattr(f, "path", None) for f in files or []]
        paths = [p for p in paths if p]
        if not paths:
            return t(lang, "admin.nofiles")
        saved, lines = [], []
        for p in paths:
            name = Path(p).name
            try:
                saved.append(self.knowledge.save_document(name, uploaded(p, self.upload_root).read_bytes(),
                                                          added_by)["name"])
            except Exception as exc:  # noqa: BLE001 - one bad file is reported, the others are kept
                reason = escape_md(user_message(exc))
                lines.append(t(lang, "admin.refused", name=escape_md(name), reason=reason))
        if saved:
            lines.insert(0, t(lang, "admin.saved", n=len(saved), names=escape_md(", ".join(saved))))
        return "\n\n".join(lines)

    def rebuild(self, lang: str, progress: gr.Progress = gr.Progress(), request: gr.Request | None = None):
        """Generator: (message, report table, status line) while the job runs."""
        lang = lang or "en"
        if refused := self._refused(request, lang):
            yield refused, gr.update(), gr.update()
            return
        try:
            job = self.knowledge.start_rebuild()
        except Exception as exc:  # noqa: BLE001 - busy (another rebuild), nothing to index …
            yield error_message(exc, lang), gr.update(), gr.update()
            return
        deadline = time.monotonic() + MAX_WAIT_S
        while job.get("state") in ("queued", "running") and time.monotonic() < deadline:
            total = job.get("total") or 0
            progress((job.get("done") or 0, total) if total else 0.0, desc=job_markdown(job, lang))
            yield job_markdown(job, lang), gr.update(), gr.update()
            time.sleep(self.poll_s)
            job = self.knowledge.get_job(job["id"])
        table, line = self._report(lang, job)
        yield job_markdown(job, lang), table, line

    def rollback(self, lang: str, request: gr.Request | None = None):
        lang = lang or "en"
        if refused := self._refused(request, lang):
            return refused, gr.update(), gr.update()
        try:
            result = self.knowledge.rollback_index()
        except Exception as exc:  # noqa: BLE001
            return error_message(exc, lang), gr.update(), gr.update()
        table, line = self._report(lang)
        return t(lang, "admin.rolled", version=escape_md(result.get("live") or "?")), table, line


def build(knowledge: KnowledgeAdmin, labels: Labels, lang: gr.State, auth: PageAuth | None = None) -> dict[str, Any]:
    h = AdminHandlers(knowledge, auth=auth)
    index_line = gr.Markdown(elem_id="onsite-index-status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            files = labels.bind(gr.File(file_count="multiple", file_types=DOCUMENT_TYPES, type="filepath",
                                        elem_id="onsite-doc-files"), label="admin.files")
            save = labels.bind(gr.Button(size="lg", elem_id="onsite-doc-save"), value="admin.save")
        with gr.Column(scale=1):
            rebuild = labels.bind(gr.Button(variant="primary", size="lg", elem_id="onsite-rebuild"), value="admin.rebuild")
            rollback = labels.bind(gr.Button(variant="secondary", size="lg", elem_id="onsite-rollback"),
                                   value="admin.rollback")
    message = gr.Markdown(elem_id="onsite-admin-message")
    report_title = labels.bind(gr.Markdown("#### " + t("en", "admin.report")),
                               value=lambda lg: "#### " + t(lg, "admin.report"))
    report = gr.Dataframe(headers=report_headers("en"), interactive=False, wrap=True, elem_id="onsite-report")
    save.click(h.save, [files, lang], [message], api_visibility="private")
    rebuild.click(h.rebuild, [lang], [message, report, index_line], api_visibility="private",
                  concurrency_limit=1, concurrency_id="rebuild", show_progress="full")
    rollback.click(h.rollback, [lang], [message, report, index_line], api_visibility="private",
                   concurrency_id="rebuild")
    return {"handlers": h, "report": report, "index_line": index_line, "report_title": report_title}
