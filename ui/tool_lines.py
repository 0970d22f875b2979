"""The sensor tools' summary lines in the page's language.

The tools write one English line (``tools.sensors.tools``: the agent, the grounding check and
the judges read it, and the tool does not know the asker's language). A Chinese page shows the
same line in Chinese: the known phrases of that line are rewritten here, at display, and
anything else (sensor ids, numbers, units, document text) is left as it is.
"""

from __future__ import annotations

import re

from ui.i18n import t

_ID = r"[A-Za-z0-9][\w.-]*"
_NUM = r"[-+]?\d+(?:\.\d+)?"
_AGE = r"just now|\d+ min ago|\d+ h ago"
_PERIOD = {"day": "白天", "night": "夜间", "all": "全天"}


def _age(words: str) -> str:
    if words == "just now":
        return t("zh", "sum.just_now")
    n, unit = words.split()[:2]
    return t("zh", "sum.min_ago" if unit == "min" else "sum.h_ago", m=n, h=n)


def _period(word: str) -> str:
    return _PERIOD.get(word, word)


# (pattern, replacement function), applied in this order
_RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(rf"({_ID}): the reading is within limits \(taken ({_AGE})\)"),
     lambda m: t("zh", "sum.one_ok", label=m[1], age=_age(m[2]))),
    (re.compile(rf"({_ID}): all (\d+) readings within limits \(all taken just now\)"),
     lambda m: t("zh", "sum.all_ok_now", label=m[1], n=m[2])),
    (re.compile(rf"({_ID}): all (\d+) readings within limits \(oldest taken ({_AGE})\)"),
     lambda m: t("zh", "sum.all_ok", label=m[1], n=m[2], age=_age(m[3]))),
    (re.compile(rf"({_ID}): (\d+) sensors?, (\d+) to look at"),
     lambda m: t("zh", "sum.flagged", label=m[1], n=m[2], k=m[3])),
    (re.compile(rf"({_ID}) stale \(last reading ({_AGE})\)"),
     lambda m: t("zh", "sum.stale", sensor=m[1], age=_age(m[2]))),
    (re.compile(rf"({_ID}) no data\b"), lambda m: t("zh", "sum.no_data", sensor=m[1])),
    (re.compile(rf"((?:{_ID}, )*{_ID}) stopped \(its readings are not judged\)"),
     lambda m: t("zh", "sum.stopped", assets=m[1])),
    (re.compile(rf"\(normal ({_NUM})–({_NUM}), (day|night|all)\)"),
     lambda m: t("zh", "sum.band", lo=m[1], hi=m[2], period=_period(m[3]))),
    (re.compile(rf"\b(warning|alarm|trip|emergency) \((above|below) ({_NUM}), (day|night|all)\)"),
     lambda m: t("zh", "sum.beyond", status=t("zh", f"sstatus.{m[1]}"), side=t("zh", f"sum.{m[2]}"), bound=m[3],
                 period=_period(m[4]))),
]


def localize(text: str, lang: str) -> str:
    """``text`` with the sensor tools' phrases in ``lang`` (only Chinese differs from the tools' English)."""
    if lang != "zh" or not text:
        return text
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    return text
