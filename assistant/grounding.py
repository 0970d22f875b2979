"""Deterministic checks of an answer against the sources it was given.

- citations: every ``[n]`` points at a source that was given, and an answer cites something;
- numbers: every number with a unit appears in a source cited by the same statement (a value
  may be rounded to the precision the answer writes it with: 24.27 in a tool result supports 24.3);
- safety: statements about doses, limits, lockout and isolation carry a citation.

A statement is a sentence together with the markers that follow it ("… 80 °C. [2]" — small
models often put the marker after the full stop).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from assistant.types import Check, Source
from knowledge.text import split_sentences

MARKER = re.compile(r"\[(\d{1,3})\]")
_MARKERS_AFTER_STOP = re.compile(r"([.。!?！？;；])[ \t]*((?:\[\d{1,3}\][ \t]*)+)")
_LEADING_MARKERS = re.compile(r"^\s*((?:\[\d{1,3}\]\s*)+)")

_UNITS = [
    "°C", "℃", "°F", "%", "ppm", "ppb", "mS/cm", "dS/m", "µS/cm", "μS/cm", "mm/s", "m³/h", "m3/h", "L/h", "l/h",
    "L/min", "l/min", "mg/L", "mg/l", "g/L", "g/l", "ml/L", "mL/L", "ml/l", "kg/ha", "g/m²", "mol/m²",
    "µmol", "μmol", "kPa", "MPa", "Pa", "bar", "psi", "kWh", "kW", "W", "rpm", "r/min", "Hz", "A", "V", "mA",
    "kg", "mg", "g", "mL", "ml", "L", "l", "m²", "m³", "mm", "cm", "km", "m", "lux", "klx", "h", "hrs", "hr",
    "hours", "hour", "min", "minutes", "minute", "s", "sec", "seconds", "days", "day", "weeks", "week", "months",
    "dB", "dBA", "N·m", "Nm",
    "小时", "分钟", "秒", "天", "周", "个月", "倍", "毫米", "厘米", "千米", "米", "毫升", "升", "毫克", "千克",
    "公斤", "克", "度", "千瓦", "瓦", "伏", "安", "兆帕", "千帕", "帕", "转", "次",
]
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# A number (or a range "18–26") directly followed by a unit; not part of an id like P-101 or GH-2.
QUANTITY = re.compile(
    rf"(?<![A-Za-z0-9_.\-/])(?P<nums>(?:{_NUMBER})(?:\s*(?:-|–|—|~|～|至|到|to)\s*(?:{_NUMBER}))?)"
    rf"\s*(?P<unit>{_UNIT_RE})(?![A-Za-z])"
)
_NUMBER_RE = re.compile(rf"(?<![A-Za-z0-9_.])(?:{_NUMBER})")

SAFETY = re.compile(
    r"\b(dos(?:e|es|age)|dilut\w*|application rate|concentration|limit|maximum|minimum|must not exceed|"
    r"do not exceed|never exceed|lock[- ]?out|tag[- ]?out|LOTO|isolat\w+|de-?energi[sz]\w*|permit|"
    r"confined space|respirator|PPE|re-?entry interval|pre-?harvest interval|trip)\b"
    r"|剂量|用量|稀释|倍液|浓度|上限|下限|不得超过|不超过|限值|最高|最低|上锁|挂牌|隔离|断电|能量源|作业许可|"
    r"防护|受限空间|安全间隔期|跳闸|停机",
    re.IGNORECASE,
)


def statements(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers), with markers that open a sentence given to the one before."""
    out: list[tuple[str, list[int]]] = []
    text = _MARKERS_AFTER_STOP.sub(lambda m: f"{m.group(2).strip()}{m.group(1)} ", text)
    for line in text.splitlines():
        for sentence in split_sentences(line):
            lead = _LEADING_MARKERS.match(sentence)
            if lead and out:
                prev, refs = out[-1]
                out[-1] = (prev, refs + [int(n) for n in MARKER.findall(lead.group(1))])
                sentence = sentence[lead.end():]
            if sentence.strip():
                out.append((sentence.strip(), [int(n) for n in MARKER.findall(sentence)]))
    return out


def cited(text: str) -> list[int]:
    """Source numbers the text cites, in first-mention order."""
    seen: list[int] = []
    for n in MARKER.findall(text):
        if int(n) not in seen:
            seen.append(int(n))
    return seen


def _floats(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER_RE.findall(text)]


def _data_numbers(data: object) -> Iterable[float]:
    if isinstance(data, bool):
        return
    if isinstance(data, (int, float)):
        yield float(data)
    elif isinstance(data, str):
        yield from _floats(data)
    elif isinstance(data, dict):
        for v in data.values():
            yield from _data_numbers(v)
    elif isinstance(data, (list, tuple)):
        for v in data:
            yield from _data_numbers(v)


def source_numbers(source: Source) -> list[float]:
    nums = _floats(source.text)
    if source.kind == "tool":
        nums.extend(_data_numbers(source.data))
    return nums


def _supported(written: str, available: list[float]) -> bool:
    value = float(written.replace(",", ""))
    decimals = len(written.split(".")[1]) if "." in written else 0
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    # Exact for integers written in a source; rounding allowed for tool readings (24.27 → 24.3).
    return any(abs(value - a) <= tolerance for a in available)


def check_citations(text: str, n_sources: int) -> Check:
    refs = cited(text)
    bad = [n for n in refs if not 1 <= n <= n_sources]
    if bad:
        return Check("citations", False, f"cites source(s) {', '.join(f'[{n}]' for n in bad)} that do not exist "
                                         f"(there are {n_sources})")
    if not refs:
        return Check("citations", False, "the answer cites no source")
    return Check("citations", True, f"{len(refs)} source(s) cited, all given")


def check_numbers(text: str, sources: list[Source]) -> Check:
    by_n = {s.n: s for s in sources}
    problems: list[str] = []
    checked = 0
    for sentence, refs in statements(text):
        for m in QUANTITY.finditer(MARKER.sub(" ", sentence)):
            checked += 1
            quantity = f"{m.group('nums')} {m.group('unit')}".strip()
            if not refs:
                problems.append(f"“{quantity}” has no citation")
                continue
            available = [x for n in refs if n in by_n for x in source_numbers(by_n[n])]
            missing = [w for w in _NUMBER_RE.findall(m.group("nums")) if not _supported(w, available)]
            if missing:
                problems.append(f"“{quantity}” does not appear in source {', '.join(f'[{n}]' for n in refs)}")
    if problems:
        return Check("numbers", False, "; ".join(problems[:5]))
    return Check("numbers", True, f"{checked} quantity(ies) found in their sources")


def check_safety(text: str) -> Check:
    uncited = [s for s, refs in statements(text) if SAFETY.search(s) and not refs]
    if uncited:
        shown = "; ".join(f"“{s[:80]}”" for s in uncited[:3])
        return Check("safety", False, f"safety-relevant statement(s) without a citation: {shown}")
    return Check("safety", True, "safety-relevant statements are cited")


def verify(text: str, sources: list[Source]) -> list[Check]:
    """All checks of one answer body (without any label line)."""
    return [check_citations(text, len(sources)), check_numbers(text, sources), check_safety(text)]


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def describe_failures(checks: list[Check]) -> str:
    return "\n".join(f"- {c.name}: {c.detail}" for c in failures(checks))
