"""A photo that came with a question but was not checked is said in the answer, with why, in the
question's language: no product learned, which product unclear, unknown product, the photo
unreadable, the inspector busy. The reason from the tool is kept in the line (it is specific),
the framing and the how-to are translated."""

from __future__ import annotations

import re

TOOL = "inspect_image"
_TEXT = {
    "en": {
        "prefix": "The photo was not checked: ",
        "none": "no product has been learned yet. Teach one from 3 or more photos of good items "
                "(photo tab → Teach a product, or `onsite inspect fit NAME PHOTOS…`), then ask again.",
        "which": "say which product it shows (known: {known}).",
        "unknown": "{reason}.",
        "unreadable": "the photo could not be read ({reason}); send it again as a PNG or JPEG.",
        "busy": "the inspector is busy; send it again in a few seconds.",
        "other": "{reason}.",
    },
    "zh": {
        "prefix": "照片未检查：",
        "none": "还没有学习任何产品。请先用 3 张以上合格品照片教会一个产品"
                "（照片页 →“教会一个产品”，或 `onsite inspect fit 名称 照片…`），然后再问。",
        "which": "请说明照片中是哪种产品（已有：{known}）。",
        "unknown": "未知产品（{reason}）。",
        "unreadable": "照片无法读取（{reason}），请以 PNG 或 JPEG 格式重新发送。",
        "busy": "检测器正忙，请几秒后重新发送。",
        "other": "{reason}。",
    },
}


def _kind(reason: str) -> str:
    low = reason.casefold()
    if "none is set up yet" in low or "no product has been learned" in low or "known: none yet" in low:
        return "none"
    if "say which product" in low:
        return "which"
    if "unknown product" in low:
        return "unknown"
    if "busy" in low:
        return "busy"
    if any(w in low for w in ("decod", "damaged", "not a readable", "cannot be read", "incomplete", "only png")):
        return "unreadable"
    return "other"


def not_checked(lang: str, reason: str) -> str:
    """One line: the photo was not checked, and why."""
    text = _TEXT.get(lang, _TEXT["en"])
    reason = reason.strip().rstrip(".")
    kind = _kind(reason)
    known = re.search(r"(?:inspection products|known): ([^)]*)", reason)
    return text["prefix"] + text[kind].format(reason=reason, known=known.group(1) if known else "?")


def photo_failures(rejected: list[dict], results: list[dict]) -> list[str]:
    """The reasons inspections of attached photos were refused before running or failed."""
    reasons = [r.get("reason") or "" for r in rejected if r.get("tool") == TOOL and r.get("reason") != "duplicate call"]
    reasons += [r.get("error") or r.get("summary") or "" for r in results
                if r.get("tool") == TOOL and not r.get("ok") and "approval" not in r]
    return list(dict.fromkeys(x for x in reasons if x))
