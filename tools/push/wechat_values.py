"""A subscribe message's ``data``: each template key filled from the message through the settings'
field map, and made to fit WeChat's rule for its type BEFORE sending. WeChat answers a value it
does not like with 47003 — and the one-time authorisation would have been set aside for nothing —
so a value is fixed here when that keeps its meaning (a long ``thing`` cut with "…", a time
formatted, a severity said as a phrase) and refused with the key and the reason when it would not
(a word in a ``number``, a negative number, a missing field).

WeChat's rules (subscribe-message docs): thing ≤ 20 characters; number ≤ 32 digits, a decimal point
allowed; letter ≤ 32 letters; symbol ≤ 5 symbols; character_string ≤ 32 letters, digits, symbols;
time / date a 24-hour time with a date ("2026-12-08 14:30"); amount ≤ 10 digits, two decimals;
phone_number ≤ 17 digits and symbols; car_number ≤ 8 characters; name ≤ 10 Chinese characters or
20 letters; phrase ≤ 5 Chinese characters only.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tools.push.channel import PushMessage
from tools.push.wechat_settings import TEMPLATE_KEY, WeChatTemplate

ELLIPSIS = "…"
_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
_HAS_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_SYMBOLS = re.compile(r"^[!-/:-@\[-`{-~]+$")
_ASCII_PRINTABLE = re.compile(r"^[!-~]+$")
_PHONE = re.compile(r"^[0-9+\-() ]{1,17}$")
_TIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$|^\d{1,2}:\d{2}$|^\d{4}年\d{1,2}月\d{1,2}日( \d{1,2}:\d{2})?$")
PHRASES = {  # words a phrase key may be fed with, said in ≤ 5 Chinese characters
    "info": "提示", "warning": "预警", "alarm": "报警", "critical": "紧急",
    "alert": "告警", "advice": "建议", "reminder": "提醒",
    "open": "待处理", "acknowledged": "已确认", "closed": "已关闭", "escalated": "已升级",
}


class TemplateValueError(ValueError):
    """A message field cannot become the value WeChat takes for a template key."""

    def __init__(self, key: str, source: str, reason: str):
        super().__init__(f"template key {key} (from {source!r}): {reason}")
        self.key, self.source, self.reason = key, source, reason


def template_data(template: WeChatTemplate, message: PushMessage, tz: ZoneInfo) -> dict[str, dict[str, str]]:
    """``{"thing1": {"value": "…"}, …}`` for ``message``, or ``TemplateValueError``."""
    return {key: {"value": fit(key, source_value(message, source, key), tz, source)}
            for key, source in template.fields.items()}


def source_value(message: PushMessage, source: str, key: str = "") -> Any:
    if source.startswith("="):
        return source[1:]
    if source == "created":
        return message.created_ms
    if source in ("title", "body", "target", "severity", "kind", "key", "link"):
        return getattr(message, source)
    name = source[len("fields."):] if source.startswith("fields.") else source
    if name in message.fields and message.fields[name] is not None:
        return message.fields[name]
    raise TemplateValueError(key, source, f"the {message.kind} message has no field {name!r}")


def fit(key: str, value: Any, tz: ZoneInfo, source: str = "") -> str:
    """``value`` as WeChat takes it for ``key``'s type."""
    match = TEMPLATE_KEY.match(key)
    if match is None:
        raise TemplateValueError(key, source, "not a WeChat template key")
    kind = match.group(1)
    if kind in ("time", "date"):
        return _time(key, value, tz, source, with_time=kind == "time")
    if kind in ("number", "amount"):
        return _number(key, value, source, max_digits=32 if kind == "number" else 10, money=kind == "amount")
    text = " ".join(str(value).split())  # no newlines or runs of spaces in a one-line field
    if not text:
        raise TemplateValueError(key, source, "the value is empty")
    if kind == "thing":
        return text if len(text) <= 20 else text[:19].rstrip() + ELLIPSIS
    if kind == "phrase":
        phrase = PHRASES.get(text.lower(), text)
        if not _CJK.match(phrase) or len(phrase) > 5:
            raise TemplateValueError(key, source, f"a phrase is at most 5 Chinese characters, not {text[:40]!r}")
        return phrase
    if kind == "letter":
        if not text.isascii() or not text.isalpha():
            raise TemplateValueError(key, source, f"a letter value takes letters only, not {text[:40]!r}")
        return text[:32]
    if kind == "symbol":
        if not _SYMBOLS.match(text) or len(text) > 5:
            raise TemplateValueError(key, source, "a symbol value is at most 5 symbols")
        return text
    if kind == "character_string":
        compact = text.replace(" ", "")
        if not _ASCII_PRINTABLE.match(compact):
            raise TemplateValueError(key, source, f"a character_string takes letters, digits and symbols only, "
                                     f"not {text[:40]!r}")
        return compact[:32]
    if kind == "phone_number":
        if not _PHONE.match(text):
            raise TemplateValueError(key, source, "a phone_number is at most 17 digits and symbols")
        return text
    if kind == "car_number":
        if len(text) > 8:
            raise TemplateValueError(key, source, "a car_number is at most 8 characters")
        return text
    if kind == "name":
        limit = 10 if _HAS_CJK.search(text) else 20
        return text if len(text) <= limit else text[:limit]
    raise TemplateValueError(key, source, f"no rule for {kind}")  # pragma: no cover - TEMPLATE_KEY lists them


def _number(key: str, value: Any, source: str, *, max_digits: int, money: bool) -> str:
    if isinstance(value, bool):
        raise TemplateValueError(key, source, "a number, not true/false")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if "." in value or "e" in value.lower() else int(value.strip())
        except ValueError:
            raise TemplateValueError(key, source, f"a number, not {value[:40]!r}") from None
    if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise TemplateValueError(key, source, f"a finite number, not {value!r}"[:120])
    if value < 0:
        raise TemplateValueError(key, source, "WeChat number fields take no sign; map a negative value to a thing key")
    if money:
        text = f"{value:.2f}"
    elif isinstance(value, int) or float(value).is_integer():
        text = str(int(value))
    else:
        text = f"{value:.6f}".rstrip("0").rstrip(".")  # no exponent: WeChat wants digits
    digits = sum(c.isdigit() for c in text)
    if digits > max_digits:
        whole = len(str(int(value)))
        if whole > max_digits:
            raise TemplateValueError(key, source, f"more than {max_digits} digits")
        text = f"{value:.{max(0, max_digits - whole)}f}"  # fewer decimals
    return text


def _time(key: str, value: Any, tz: ZoneInfo, source: str, *, with_time: bool) -> str:
    fmt = "%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d"
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return at.astimezone(tz).strftime(fmt)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 10**11 else value  # ms since the epoch (ours), else seconds
        try:
            return datetime.fromtimestamp(seconds, UTC).astimezone(tz).strftime(fmt)
        except (OverflowError, OSError, ValueError):
            raise TemplateValueError(key, source, f"not a time: {value!r}") from None
    if isinstance(value, str):
        text = value.strip()
        try:  # an ISO time with an offset is said in the site's zone
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is not None or "T" in text:
                return _time(key, parsed, tz, source, with_time=with_time)
        except ValueError:
            pass
        if _TIME_TEXT.match(text):
            return text
    raise TemplateValueError(key, source, f"not a time WeChat takes ({fmt.replace('%', '')}): {str(value)[:40]!r}")
