"""The page's daily advice: a tab with today's advice of every greenhouse zone — headline, the
findings with their numbers, what to change today with the quoted guide sentences and their [n]
markers, and the numbered sources — read from the Advisor (assistant/advice.py), made on first
look if the day it reads is over. Hidden when the service bundle has no parts (UI fakes)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.chat import escape_md
from ui.i18n import Labels

WORDS = {
    "tab": ("Daily advice", "每日建议"),
    "refresh": ("Refresh", "刷新"),
    "empty": ("No greenhouse zones to advise.", "没有需要建议的温室区域。"),
    "pending": ("{zone}: today's advice is made at {at}.", "{zone}：今日建议将于{at}生成。"),
    "unavailable": ("{zone}: {note}", "{zone}：{note}"),
    "failed": ("{zone}: the advice could not be made ({error}).", "{zone}：无法生成建议（{error}）。"),
    "intro": ("Yesterday's readings against the crop stage's targets; each recommendation is quoted from the "
              "crop guide with its source.", "依据昨天的数据对照作物阶段指标；每条建议均摘自作物规程并注明来源。"),
}


def w(lang: str, key: str, **kw: Any) -> str:
    en, zh = WORDS[key]
    text = zh if lang == "zh" else en
    return text.format(**kw) if kw else text


def available(services: Any) -> bool:
    return getattr(services, "parts", None) is not None


def advice_markdown(services: Any, lang: str) -> str:
    from assistant.advice import advisor_for
    from assistant.errors import user_message

    advisor = advisor_for(services)
    zones = advisor.zones()
    if not zones:
        return w(lang, "empty")
    parts = [escape_md(w(lang, "intro"))]
    for zone in zones:
        try:
            a = advisor.get(zone)
        except Exception as exc:  # noqa: BLE001 - one zone's failure leaves the others on the page
            parts.append(escape_md(w(lang, "failed", zone=zone, error=user_message(exc))))
            continue
        if a["status"] == "pending":
            parts.append(escape_md(w(lang, "pending", zone=zone, at=a["ready_at"][11:16])))
        elif a["status"] == "unavailable":
            parts.append(escape_md(w(lang, "unavailable", zone=zone, note=a["note"])))
        else:
            body = "  \n".join(escape_md(line) for line in a["body"].splitlines())
            parts.append(f"### {escape_md(a['headline'])}\n\n{body}")
    return "\n\n---\n\n".join(parts)


def build(services: Any, labels: Labels, lang: gr.State) -> dict[str, Any]:
    view = gr.Markdown(elem_id="onsite-advice")
    refresh = labels.bind(gr.Button(w("en", "refresh"), size="sm", elem_id="onsite-advice-refresh"),
                          value=lambda lg: w(lg, "refresh"))

    def show(lg: str | None) -> str:
        return advice_markdown(services, lg or "en") if available(services) else ""

    refresh.click(show, [lang], [view], api_visibility="private")
    return {"show": show, "outputs": [view]}
