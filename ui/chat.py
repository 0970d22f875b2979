"""One chat turn on the page: the service's events folded into Chatbot messages.

Plain functions and a small accumulator, no Gradio: ``TurnView.apply(event)`` for each event of
``Service.ask`` / ``Service.resume``; ``TurnView.messages()`` gives the assistant's messages of
the turn as Chatbot message dicts — collapsible steps (``metadata.title``, ``status``) for the
stages and tool calls, then the answer with a visible badge when it is an extract, an abstention
or partial. Every text that came from the model, a document or a tool is escaped first
(``escape_md``): HTML shows as text and images in answers are never fetched. Rows of a table
quoted in an answer are shown as a table (``with_tables``), and the sensor tools' lines in the
page's language (``ui.tool_lines``).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from assistant.errors import user_message
from assistant.llm.extractive import LABEL as EXTRACT_LABEL
from ui.i18n import TEXT, t
from ui.tool_lines import localize

MAX_ARG_CHARS = 60
_IMAGE = re.compile(r"!(?=\[)")  # markdown image: ![alt](url) / ![alt][ref]


def escape_md(text: str | None) -> str:
    """Text safe to give the Markdown renderer: HTML tags and entities show literally, and an
    image (``![..](http://..)``, which the browser would fetch) stays text."""
    s = html.escape(str(text or ""), quote=False)
    return _IMAGE.sub("&#33;", s)  # an entity is text: it cannot start an image


def _label_pattern(template: str) -> re.Pattern[str]:
    head, _, tail = template.partition("{reason}")
    middle = ".*?" if _ else ""
    return re.compile(rf"^{re.escape(head)}{middle}{re.escape(tail)}\s*\n?")


_EXTRACT_LABELS = [_label_pattern(template) for template in EXTRACT_LABEL.values()]
# after a statement's "[n]" the next one starts (Chinese extracts join them without a space)
_AFTER_CITATION = re.compile(r"(?:(?<=\[\d\])|(?<=\[\d\d\]))\s*(?=[^\s\[.,;:!?。，；：！？)）])")


def extract_lines(text: str) -> str:
    """An extract as the page shows it: the label line goes (the badge above says it, with the
    reason), and each quoted statement with its [n] on a line of its own, as a list."""
    for pattern in _EXTRACT_LABELS:
        text = pattern.sub("", text, count=1)
    lines = [part.strip() for line in text.splitlines() for part in _AFTER_CITATION.split(line) if part.strip()]
    if len(lines) < 2:
        return "\n".join(lines)
    return "\n".join(line if _TABLE_ROW.match(line) else f"- {line}" for line in lines)


_TABLE_ROW = re.compile(r"^\s*\|.*\|")  # "| a | b |" (a citation may follow the last bar)
_SEPARATOR_CELL = re.compile(r"^\s*:?-+:?\s*$")


def _cells(row: str) -> list[str]:
    """The cells of ``| a | b |``; text after the last bar (a citation "[1]") joins the last cell."""
    body = row.strip()[1:]
    head, _, tail = body.rpartition("|")
    cells = [c.strip() for c in head.split("|")]
    if tail.strip():
        cells[-1] = f"{cells[-1]} {tail.strip()}".strip()
    return cells


def _table(rows: list[str]) -> list[str]:
    """Rows of ``| … |`` as a Markdown table: the first row is the header, a separator row is
    added when missing, every row gets the header's number of cells."""
    cells = [_cells(r) for r in rows]
    if len(cells) > 1 and all(_SEPARATOR_CELL.match(c) for c in cells[1]):
        del cells[1]
    width = max(len(c) for c in cells)
    lines = []
    for i, row in enumerate(cells):
        row = row + [""] * (width - len(row))
        lines.append("| " + " | ".join(row) + " |")
        if i == 0:
            lines.append("|" + "---|" * width)
    return lines


def with_tables(text: str) -> str:
    """``text`` with each run of consecutive ``|`` rows made a Markdown table (blank lines
    around it, a header separator): documents and answers quote table rows without one."""
    lines, out, run = (text or "").split("\n"), [], []

    def flush() -> None:
        if run:
            if out and out[-1].strip():
                out.append("")
            out.extend(_table(run))
            out.append("")
            run.clear()

    for line in lines:
        if _TABLE_ROW.match(line) and line.count("|") >= 2:
            run.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out).rstrip("\n")


def call_title(tool: str, args: dict[str, Any] | None) -> str:
    parts = []
    for k, v in (args or {}).items():
        if k == "evidence":
            continue
        shown = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        if len(shown) > MAX_ARG_CHARS:
            shown = shown[: MAX_ARG_CHARS - 1] + "…"
        parts.append(f"{k}={shown}")
    return f"{tool}({', '.join(parts)})"


def _data(event: Any) -> tuple[str, dict[str, Any]]:
    """(type, data) of an ``Event`` or of its ``to_dict()`` form."""
    if isinstance(event, dict):
        d = dict(event)
        return str(d.pop("type", "")), d
    return event.type, dict(event.data)


@dataclass
class Step:
    kind: str  # status | tool | revised | checks
    title: str
    status: str = "pending"
    content: str = ""
    log: str = ""
    key: str = ""
    image_id: str | None = None  # annotated photo of an inspection


@dataclass
class TurnView:
    lang: str = "en"
    steps: list[Step] = field(default_factory=list)
    text: str = ""
    answer: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    failed_checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    # ---- folding events ------------------------------------------------------------------
    def apply(self, event: Any) -> None:
        kind, d = _data(event)
        if kind == "status":
            self._status(str(d.get("stage") or ""))
        elif kind == "tool":
            self._tool(d)
        elif kind == "token":
            self.text += str(d.get("text") or "")
            self._settle_status()
        elif kind == "sources":
            self.sources = list(d.get("sources") or [])
        elif kind == "check":
            self._check(d)
        elif kind == "approval":
            self.pending = list(d.get("pending") or [])
        elif kind == "done":
            self.answer = d
            self.text = str(d.get("text") or "")
            self.sources = list(d.get("sources") or self.sources)
            self.pending = list(d.get("pending") or [])
            self._finish()
        elif kind == "error":
            self.error = str(d.get("message") or "the turn failed")
            self._finish()

    def _status(self, stage: str) -> None:
        key = f"step.{stage}"
        title = t(self.lang, key if key in TEXT else "step.working")
        for s in self.steps:
            if s.kind == "status":
                s.title, s.status = title, "pending"
                return
        self.steps.insert(0, Step("status", title))

    def _settle_status(self) -> None:
        for s in self.steps:
            if s.kind == "status":
                s.status = "done"

    def _tool(self, d: dict[str, Any]) -> None:
        tool = str(d.get("tool") or "?")
        args = d.get("args") or {}
        key = tool + json.dumps(args, sort_keys=True, ensure_ascii=False, default=str)
        title = t(self.lang, "step.tool", call=call_title(tool, args))
        if d.get("phase") == "started":
            self.steps.append(Step("tool", title, key=key))
            return
        waiting = [s for s in self.steps if s.kind == "tool" and s.status == "pending"]
        step = next((s for s in waiting if s.key == key), None) or \
            next((s for s in waiting if s.key.startswith(tool + "{")), None)
        if step is None:
            step = Step("tool", title, key=key)
            self.steps.append(step)
        step.status = "done"
        lines = [escape_md(localize(d.get("summary") or "", self.lang))]
        if d.get("error"):
            lines.append(f"_{escape_md(d['error'])}_")
        approval = d.get("approval")
        if approval:
            word = "step.approved" if approval.get("approved") else "step.rejected"
            step.log = t(self.lang, word, by=escape_md(approval.get("by") or "?"))
        elif not d.get("ok", True):
            step.log = t(self.lang, "step.failed")
        step.content = "\n\n".join(x for x in lines if x)
        image = (d.get("data") or {}).get("annotated_image_id")
        step.image_id = image if isinstance(image, str) else None

    def _check(self, d: dict[str, Any]) -> None:
        if d.get("ok"):
            return
        if d.get("retry"):
            self.text = ""  # the streamed draft is being replaced
            detail = escape_md(d.get("detail") or d.get("name"))
            self.steps.append(Step("revised", t(self.lang, "step.revised"), "done", detail))
        elif d.get("name") not in {c.get("name") for c in self.failed_checks}:
            self.failed_checks.append(d)

    def _finish(self) -> None:
        for s in self.steps:
            s.status = "done"
        if self.failed_checks and not any(s.kind == "checks" for s in self.steps):
            body = "\n".join(f"- **{escape_md(c.get('name'))}**: {escape_md(c.get('detail'))}" for c in self.failed_checks)
            self.steps.append(Step("checks", t(self.lang, "step.checks"), "done", body))

    # ---- rendering -------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.answer is not None or self.error is not None

    def badges(self) -> list[str]:
        a = self.answer or {}
        out = []
        if a.get("status") == "abstained":
            out.append(t(self.lang, "badge.abstained"))
        elif a.get("mode") == "extractive":
            reason = a.get("mode_reason") if self.lang == "en" else None  # a short English phrase
            out.append(t(self.lang, "badge.extractive", reason=f": {escape_md(reason)}" if reason else ""))
        if a.get("status") == "partial":
            out.append(t(self.lang, "badge.partial"))
        if self.pending:
            out.append(t(self.lang, "badge.pending"))
        return out

    def answer_markdown(self) -> str:
        if self.error is not None:
            return t(self.lang, "err.failed", msg=escape_md(self.error))
        text = self.text.strip()
        if (self.answer or {}).get("mode") == "extractive":
            text = extract_lines(text)
        # the tools' reading lines in the page's language; quoted table rows as tables
        body = with_tables(escape_md(localize(text, self.lang)))
        badges = self.badges()
        return "\n\n".join([*(f"> {b}" for b in badges), body] if badges else [body])

    def messages(self, image: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
        """The turn's assistant messages (Chatbot message dicts). ``image(upload_id)`` turns an
        annotated photo into message content (a component); None leaves photos out."""
        out: list[dict[str, Any]] = []
        for i, s in enumerate(self.steps):
            meta: dict[str, Any] = {"title": s.title, "status": s.status, "id": f"step-{i}"}
            if s.log:
                meta["log"] = s.log
            out.append({"role": "assistant", "content": s.content, "metadata": meta})
            if s.image_id and image is not None:
                content = image(s.image_id)
                if content is not None:
                    out.append({"role": "assistant", "content": content, "metadata": {}})
        if self.text.strip() or self.finished:
            out.append({"role": "assistant", "content": self.answer_markdown(), "metadata": {}})
        return out


def user_messages(text: str, photo_paths: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The person's side of a turn: the escaped question, then each attached photo (a file in
    Gradio's upload cache, which the page may serve)."""
    out = []
    if text.strip():
        out.append({"role": "user", "content": escape_md(text.strip())})
    for p in photo_paths:
        out.append({"role": "user", "content": {"path": p}})
    return out


def error_message(exc: Exception, lang: str) -> str:
    """A refused turn (busy, invalid question, unknown photo) as a chat message."""
    retry = getattr(exc, "retry_after_s", None)
    if retry is not None and type(exc).__name__ == "ModelBusyError":
        return t(lang, "err.busy", s=float(retry))
    return t(lang, "err.failed", msg=escape_md(user_message(exc)))


def pending_markdown(pending: list[dict[str, Any]], lang: str) -> str:
    """What a conversation waits for, in words a supervisor can decide on."""
    if not pending:
        return ""
    lines = [t(lang, "approval.title")]
    for p in pending:
        args = p.get("args") or {}
        what = " · ".join(escape_md(str(args[k])) for k in ("asset", "priority", "problem") if args.get(k))
        what = what or escape_md(call_title("", args))
        lines.append(t(lang, "approval.item", tool=escape_md(p.get("tool") or "?"), what=what))
        for ev in (args.get("evidence") or [])[:5]:
            lines.append(f"  - {escape_md(localize(str(ev), lang))}")
    return "\n\n".join(lines)
