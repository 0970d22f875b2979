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
from knowledge.text import HAN, split_sentences

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


def normalise_markers(text: str) -> str:
    """Markers written after a full stop move in front of it ("80 °C. [2]" → "80 °C [2].")."""
    def move(m: re.Match) -> str:
        before = m.string[m.start() - 1] if m.start() else " "
        space = "" if before.isspace() or HAN.match(before) else " "
        after = m.string[m.end()] if m.end() < len(m.string) else ""
        gap = " " if m.group(1) in ".!?;" and after and not after.isspace() else ""
        return f"{space}{m.group(2).strip()}{m.group(1)}{gap}"

    return "\n".join(_MARKERS_AFTER_STOP.sub(move, line).rstrip() for line in text.split("\n"))


def statements(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers), with markers that open a sentence given to the one before."""
    out: list[tuple[str, list[int]]] = []
    text = normalise_markers(text)
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


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
# A Chinese numeral directly before a unit ("每两个月", "三十度"). A lone 一 is left alone: "一天",
# "一次" are mostly idiom ("one day", "once"), not a quantity to check.
_CN_QUANTITY = re.compile(r"([零〇一二两三四五六七八九十百千]+)(?=\s*(?:个月|天|小时|分钟|秒|周|度|倍|年|米|升|克|公斤|千克|毫升|毫米|厘米|℃|°C|%))")


def _cn_value(numeral: str) -> int | None:
    total, digit = 0, None
    for ch in numeral:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit = None
    return total + (digit or 0) if numeral else None


def arabic_numerals(text: str) -> str:
    """Chinese numerals before a unit written as digits ("每两个月" → "每2个月"), so that a
    model writing numbers in words is checked like one writing digits."""
    return _CN_QUANTITY.sub(lambda m: m.group(1) if m.group(1) == "一" else str(_cn_value(m.group(1))), text)


def _floats(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER_RE.findall(arabic_numerals(text))]


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
        for m in QUANTITY.finditer(arabic_numerals(MARKER.sub(" ", sentence))):
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


# Status claims about live data. A negation or a doubt just before the word ("not normal",
# "不正常", "无法确定…是否正常") is not a claim.
_CLAIM = {
    "normal": re.compile(r"\b(normal(?:ly)?|within (?:the )?(?:normal )?(?:limits|range)|in range|fine|ok|okay|"
                        r"no alarms?)\b|正常|在范围内|范围之内|没有问题|无异常|没有报警|无报警|没有告警", re.I),
    # "there are alarms", "有报警": some reading went beyond a limit (high or low)
    "alarm": re.compile(r"\bthere (?:are|were|is|was) (?:an? |some |\d+ )?(?:alarms?|excursions?)\b|有报警|出现报警|发生报警|有告警", re.I),
    "high": re.compile(r"\b(too (?:high|hot|warm)|high|above|exceeds?|exceeding|over the limit)\b|偏高|过高|超过|超出|超标|高于|太高|太热", re.I),
    "low": re.compile(r"\b(too (?:low|cold)|low|below|under the limit)\b|偏低|过低|低于|太低|太冷", re.I),
    "no_data": re.compile(r"\bno (?:data|readings?)\b|没有数据|无数据|没有读数|无读数|暂无数据", re.I),
    # equipment that is off: "P-101 is stopped", "泵处于停机状态" (not "a normal stop" in a procedure)
    "stopped": re.compile(r"\b(?:is|are|was|has|has been|appears to be|seems to be)\s+(?:currently\s+|now\s+)?"
                          r"(?:stopped|shut down)\b|\bnot running\b"
                          r"|已停机|停机状态|处于停机|停机了|停止运行|停运|未运行|没有运行|没在运行|不在运行", re.I),
}
_DOUBT = re.compile(r"(\b(not|no|n't|never|cannot|can't|whether|if|unknown|unclear)\b|不|没|未|无法|是否|能否)[^.。;；,，]{0,12}$", re.I)
# a reading in any of these is a reason "normal" / "ok" / "running normally" is not true: beyond a
# limit, missing, bad, or from equipment that is stopped (its readings are not judged)
_NOW_WORDS = re.compile(r"\b(now|currently|right now|at the moment|at present)\b|现在|当前|目前|此刻|实时", re.I)
_TIME_UNITS = {"h", "hrs", "hr", "hours", "hour", "min", "minutes", "minute", "s", "sec", "seconds", "days", "day",
               "weeks", "week", "months", "小时", "分钟", "秒", "天", "周", "个月"}


def _states_a_limit(sentence: str) -> bool:
    """A quantity other than a time window ("not above 70 °C"; "in the last 24 h" does not count)."""
    return any(m.group("unit") not in _TIME_UNITS for m in QUANTITY.finditer(arabic_numerals(sentence)))


_LIVE_ONLY = {"normal", "alarm", "no_data", "stopped"}  # claims a document cannot support about now
_BAD_STATUSES = {"warning", "alarm", "trip", "emergency", "no_data", "bad_quality", "stopped"}


def live_statuses(sources: list[Source]) -> dict[str, set[str]]:
    """What the tool results say about live data: per claim kind, the evidence for it
    ("normal" → readings within limits, "high"/"low" → readings beyond a limit or excursions,
    "no_data" → sensors or windows with nothing, "stopped" → readings of stopped equipment,
    "bad" → any reason "normal" is not true)."""
    seen: dict[str, set[str]] = {"normal": set(), "high": set(), "low": set(), "no_data": set(), "stopped": set(),
                                 "bad": set()}
    for s in sources:
        if s.kind != "tool" or not isinstance(s.data, dict):
            continue
        for r in s.data.get("readings") or []:
            status, sid = r.get("status"), str(r.get("sensor_id"))
            if status == "normal" and not r.get("stale"):
                seen["normal"].add(sid)
            if status in _BAD_STATUSES or r.get("stale"):
                seen["bad"].add(sid)
            if status == "no_data" or r.get("stale"):
                seen["no_data"].add(sid)
            if status == "stopped":
                seen["stopped"].add(sid)
            if r.get("direction") in ("high", "low"):
                seen[r["direction"]].add(sid)
        for x in s.data.get("excursions") or []:
            seen["bad"].add(str(x.get("sensor_id")))
            if x.get("direction") in ("high", "low"):
                seen[x["direction"]].add(str(x.get("sensor_id")))
        if "buckets" in s.data and not s.data.get("buckets"):  # a history window with no readings
            seen["no_data"].add(str(s.data.get("sensor_id")))
            seen["bad"].add(str(s.data.get("sensor_id")))
        for sid in s.data.get("no_data") or []:
            seen["no_data"].add(str(sid))
            seen["bad"].add(str(sid))
    return seen


def claims(sentence: str) -> set[str]:
    """The status kinds a sentence asserts (negated or doubted mentions excluded)."""
    found = set()
    for kind, pattern in _CLAIM.items():
        for m in pattern.finditer(sentence):
            if not _DOUBT.search(sentence[: m.start()]):
                found.add(kind)
                break
    return found


def check_status(text: str, sources: list[Source]) -> Check:
    """A status the answer claims about live data must be what the tool results say. Checked:
    every sentence that cites a tool result, and every uncited sentence (a bare "it is normal" is
    about the live data). "normal" (also "ok", "running normally") fails when a reading is
    missing, stale, beyond a limit or from stopped equipment; "high", "low", "no data" and
    "stopped" fail when no tool result shows them."""
    tools = {s.n: s for s in sources if s.kind == "tool"}
    problems = []
    for sentence, refs in statements(text):
        bare = MARKER.sub(" ", sentence)
        now = bool(_NOW_WORDS.search(bare))  # "… is normal now [2]" is about live data, whatever it cites
        found = claims(bare)
        if refs and not set(refs) & tools.keys() and not now:
            # About a document ("above 30 °C the fruit set suffers", "up to 70 °C is normal") — unless
            # live data was read and the sentence states a bare state, with no limit or range of its
            # own, that only live data can tell ("正常 [3]", "没有报警。[1]").
            found &= _LIVE_ONLY if tools and not _states_a_limit(bare) else set()
        if not found:
            continue
        if not tools:
            problems.append(f"“{sentence[:80]}” states a live status, but no live data was read")
            continue
        # a sentence citing tool results is judged by those; any other by all of them
        seen = live_statuses([tools[n] for n in refs if n in tools] or list(tools.values()))
        for kind in found:
            if kind == "normal":
                wrong = bool(seen["bad"])
            elif kind == "alarm":
                wrong = not (seen["high"] or seen["low"])
            else:
                wrong = not seen[kind]
            if wrong:
                truth = ", ".join(sorted(k for k in ("high", "low", "no_data", "stopped") if seen[k])) or (
                    "normal" if seen["normal"] else "nothing")
                problems.append(f"“{sentence[:80]}” says {kind.replace('_', ' ')}, the live data shows {truth.replace('_', ' ')}")
                break
    if problems:
        return Check("status", False, "; ".join(problems[:3]))
    return Check("status", True, "status claims agree with the live data")


def check_content(text: str) -> Check:
    """An answer must say something besides source numbers ("[1]" alone is not an answer), and
    no statement may be a bare number ("1 [5]." — a small model's stray fragment)."""
    words = MARKER.sub(" ", text)
    if len(re.findall(r"\w", words)) < 3:
        return Check("content", False, "the answer has no text besides citation markers")
    bare = [x for x, _ in statements(text) if not re.search(r"[^\W\d_]", MARKER.sub(" ", x))]
    if bare:
        return Check("content", False, f"“{bare[0][:40]}” is not a statement")
    return Check("content", True, "the answer has text")


def check_support(text: str, sources: list[Source]) -> Check:
    """No statement rests only on passages flagged as instructions to the assistant, and no
    statement that relaxes a safety rule rests only on passages the regulations contradict
    (knowledge/safety.py): such passages are listed as sources, never the reason for advice."""
    from knowledge.injection import FLAG
    from knowledge.safety import relaxation

    by_n = {s.n: s for s in sources}
    problems = []
    for sentence, refs in statements(text):
        cited_sources = [by_n[n] for n in refs if n in by_n]
        if not cited_sources:
            continue
        if all(FLAG in s.flags for s in cited_sources):
            problems.append(f"“{sentence[:80]}” rests only on a passage flagged as instructions to the assistant")
        elif relaxation(MARKER.sub(" ", sentence)) and all((s.data or {}).get("conflicts") for s in cited_sources):
            problems.append(f"“{sentence[:80]}” relaxes a safety rule on the word of a document the site's "
                            "regulations contradict")
    if problems:
        return Check("support", False, "; ".join(problems[:3]))
    return Check("support", True, "no statement rests only on flagged or contradicted passages")


def verify(text: str, sources: list[Source]) -> list[Check]:
    """All checks of one answer body (without any label line)."""
    return [check_content(text), check_citations(text, len(sources)), check_numbers(text, sources),
            check_safety(text), check_status(text, sources), check_support(text, sources)]


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def describe_failures(checks: list[Check]) -> str:
    return "\n".join(f"- {c.name}: {c.detail}" for c in failures(checks))
