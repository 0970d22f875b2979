"""Routing: which tools to call, with which arguments, and what to search for.

Two routers produce the same ``RoutePlan``:
- ``plan_schema`` gives the JSON schema the model decides against: each call is one of the
  site's tools with that tool's own argument model (ids are enums), so a constrained decoder can
  only write calls that exist;
- ``deterministic_plan`` does the same without a model, from the question's words, the site
  profile's names (ids and aliases of zones, assets, sensors) and attached photos.

``validate_plan`` checks every call again before anything runs: unknown tools, bad arguments,
photos that were not attached, assets that do not exist and calls beyond the limit are rejected
with a reason, never executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from tools.base import PlanContext, ToolRegistry
from tools.site import SiteProfile

# What people call a measurement. Keys are the site profile's metric names. Longer words are
# matched first and use up their text: "suction pressure" is not also the discharge "pressure",
# "bearing temperature" not also the air "temperature", "slab ec" not also the feed "ec".
METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "air_temperature": ("temperature", "temp", "hot", "cold", "heat", "warm", "cool", "chilly", "freezing",
                        "温度", "气温", "冷", "热", "暖", "凉"),
    "relative_humidity": ("humidity", "humid", "rh", "muggy", "湿度", "潮湿", "闷"),
    "co2": ("co2", "carbon dioxide", "二氧化碳"),
    "par": ("light", "sunlight", "ppfd", "par", "光照", "光强", "光线"),
    "dli": ("dli", "daily light", "光积分"),
    "substrate_moisture": ("water content", "moisture", "slab", "含水量", "基质水分"),
    "substrate_ec": ("slab ec", "root zone ec", "基质ec", "根区ec"),
    "feed_ec": ("feed ec", "ec", "供液ec", "电导"),
    "feed_ph": ("ph", "酸碱"),
    "vibration_rms": ("vibration", "vibrating", "vibrate", "shaking", "振动", "震动", "抖动"),
    "bearing_temperature": ("bearing temperature", "bearing temp", "bearing", "bearings", "轴承温度", "轴承"),
    "discharge_pressure": ("discharge pressure", "outlet pressure", "pressure", "出口压力", "压力"),
    "suction_pressure": ("suction pressure", "inlet pressure", "suction", "入口压力", "吸入压力", "进口压力"),
    "flow": ("flow", "flow rate", "流量"),
    "motor_current": ("motor current", "current draw", "amps", "amperage", "电流"),
    "tank_level": ("tank level", "water level", "液位", "水位"),
}
# Words that name a measurement only when nothing more specific does: "the CO2 level" is CO2,
# "the level in T-101" the tank level; "current" is the motor current only on its own ("P-101
# current?", "the current of P-101"), not in "the current temperature".
WEAK_METRIC_WORDS: dict[str, tuple[str, ...]] = {"tank_level": ("level", "tank")}
_CURRENT = re.compile(r"(?<![A-Za-z0-9_])current(?![A-Za-z0-9_])(?!\s+(?!(?:now|right|of|on|at|in|for|draw)\b)[a-z])",
                      re.I | re.A)
CROP_WORDS = {"tomato": {"zh": "番茄", "en": "tomato"}, "cucumber": {"zh": "黄瓜", "en": "cucumber"}}
STAGE_WORDS = {
    "propagation": {"zh": "育苗期", "en": "propagation"},
    "vegetative": {"zh": "定植期 营养生长", "en": "vegetative establishment"},
    "flowering": {"zh": "开花坐果期", "en": "flowering fruit set"},
    "fruiting": {"zh": "结果采收期", "en": "fruiting harvest"},
}

# English words are matched with ASCII word boundaries (re.A): Python's \w also matches Chinese
# characters, so "现在now吗" or "泵P-101现在" would have no boundary around the ASCII word.
_NOW = re.compile(r"\b(now|current(ly)?|right now|at the moment|normal|ok|okay|status|reading)\b|现在|当前|目前|实时|正常|读数|状态", re.I | re.A)
_LIVE = re.compile(r"\b(now|current(ly)?|right now|at the moment|today|this morning|tonight)\b|现在|当前|目前|实时|今天|此刻", re.I | re.A)
_HISTORY = re.compile(r"\b(ris\w*|increas\w*|trend\w*|history|histor\w*|dropp\w*|falling|over the (last|past)|last \d+|"
                      r"since|yesterday|overnight|climb\w*)\b|趋势|上升|升高|下降|历史|过去|最近|昨天|昨晚|一直", re.I | re.A)
_CHECK = re.compile(r"\b(alarms?|anything wrong|problems?|excursions?|site check)\b|报警|告警|异常情况|有没有问题|有什么问题", re.I | re.A)
# "the alarm and trip limits" names settings, not an alarm that went off or a pump that tripped
_LIMIT_PHRASE = re.compile(r"\b(?:alarm|trip)(?: (?:and|or|/) (?:alarm|trip))? (?:limits?|values?|settings?|levels?|"
                           r"points?|thresholds?)\b|(?:报警|跳闸|联锁)(?:和(?:报警|跳闸|联锁))?(?:值|限值|设定值?|点)", re.I | re.A)
# What the documents answer: limits, ranges, intervals, steps. Without a sign of live data
# ("now", a trend, a fault) such a question needs no tool even when it names an asset.
_REFERENCE = re.compile(r"\b(limits?|ranges?|settings?|set ?points?|intervals?|how often|procedure|steps?|rated|"
                        r"specification|spec|design|at what)\b|限值|范围|设定|间隔|周期|多久|步骤|规程|额定|联锁值|在多少", re.I | re.A)
# A fault is reported ("P-101 is running hot", "the seal is leaking", "泵P-101跳闸了"), not asked
# about with a question word ("How hot is the bearing?", "Is the vibration high?", "有没有跳闸？").
_FAULT = re.compile(
    r"\b(ris(?:ing|en|es)|rose|increas(?:ing|ed)|climb(?:ing|ed|s)|(?:going|gone|went|shot) up|spik(?:ing|ed|es)|"
    r"dropp(?:ing|ed)|falling|fell|leak(?:s|ing|ed|age)?|drip(?:ping|s)|nois(?:y|e)|rattl\w*|grind(?:ing|s)|"
    r"squeal\w*|knock(?:ing|s)|overheat\w*|hot to the touch|(?:is|are|was|were|feels?|felt) (?:very |really )?hot|"
    r"(?:too|very|running|getting|runs|ran|got|really|extremely|so|quite|abnormally|unusually) (?:hot|warm)|"
    r"(?:is|are|was|were|looks?|seems?|reads?|reading|running|getting|gone|went|very|too|abnormally|unusually|"
    r"really|so|quite|stays?|staying) (?:high|low)|(?:higher|lower) than (?:normal|usual|expected)|"
    r"high (?:vibration|temperature|temp|current|amps|pressure|noise|reading|level)s?|"
    r"low (?:flow|pressure|level|suction|discharge|current)|vibrat(?:ing|es) (?:badly|a lot|heavily|hard|strongly)|"
    r"shak(?:ing|es)|tripp(?:ed|ing)|trips|fault(?:y|s|ed)?|fail(?:ed|ing|s|ure)|broken|broke|cavitat\w*|smok\w*|"
    r"burning|spark(?:s|ing)|seized|stuck|jammed|abnormal|unusual|won't start|will not start|not starting|"
    r"does(?:n't| not) start|stopped working|not working|in alarm|alarm(?:ing|ed))\b"
    r"|升高|上升|增大|变大|越来越(?:高|大|热)|下降|降低|偏低|过低|太低|偏高|过高|太高|很高|异常|泄漏|漏水|漏油|漏液|渗漏|"
    r"滴漏|噪音|噪声|异响|过热|发烫|烫手|太热|很热|跳闸(?!后|时|以后|之后|值|点|保护|限|设定|的话)|跳停|故障|损坏|坏了|"
    r"冒烟|烧坏|烧焦|卡死|卡住|不转|不启动|启动不了|起不来|停机了|抖得|气蚀|报警了|发热"
    r"|(?:温度|振动|震动|电流|压力|噪音|声音)(?:很|太|偏|过|有点|比较)?(?:高|大)|(?:压力|流量|液位|水位)(?:很|太|偏|过|有点)?低",
    re.I | re.A)
# A clause that asks whether (or how much), rather than reports: its fault words are not a report.
_ASKS = re.compile(
    r"^\s*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|any|anything|how|what|what's|which|"
    r"when|where|who|whether|check|see|tell me|show me)\b"
    r"|吗|是否|有没有|有无|是不是|会不会|多少|多高|几度|怎么样|(?<!为)什么", re.I | re.A)
_CONDITION = re.compile(r"\b(if|whether|in case)\b|如果|假如|万一|若是|要是", re.I | re.A)
_CLAUSES = re.compile(r"[,;.!?，。；！？\n]")
_ORDER_CREATE = re.compile(r"\b(work order|raise an? order|open an? order|repair request)\b|开工单|报修|派工|建工单|创建工单", re.I | re.A)
_ORDER_LIST = re.compile(r"\b(work orders|open orders|pending orders)\b|工单", re.I | re.A)
# Numbers as people write them: 12, 十二, 两
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(\d{1,4}|[零〇一二两三四五六七八九十]{1,3})"
# a window length, not part of an id ("GH-2 humidity" is not 2 hours)
_HOURS = re.compile(rf"(?<![A-Za-z0-9_.\-])(\d{{1,4}}(?:\.\d+)?|[零〇一二两三四五六七八九十]{{1,3}})\s*(?:个\s*)?(h|hours?|hrs?|小时|days?|天|weeks?|周|星期)(?![A-Za-z])", re.I | re.A)


class ToolCall(BaseModel):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class RoutePlan(BaseModel):
    calls: list[ToolCall] = Field(default_factory=list)
    search: str = ""


@dataclass
class CheckedPlan:
    calls: list[ToolCall] = field(default_factory=list)  # validated, arguments normalised
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"tool", "args", "reason"}
    search: str = ""


def plan_schema(registry: ToolRegistry, max_calls: int) -> type[BaseModel]:
    """A RoutePlan whose calls are a union of the registered tools, each with its own Args."""
    variants = []
    for name in registry.names():
        tool = registry.get(name)
        variants.append(create_model(f"Call_{name}", tool=(Literal[name], ...), args=(tool.Args, ...)))
    call_type: Any = Union[tuple(variants)] if variants else ToolCall
    return create_model(
        "RouteDecision",
        calls=(list[call_type], Field(default_factory=list, max_length=max_calls)),
        search=(str, Field("", max_length=300)),
    )


def validate_plan(plan: RoutePlan, registry: ToolRegistry, site: SiteProfile, photos: list[str],
                  max_calls: int, products: list[str] | None = None) -> CheckedPlan:
    """Check every planned call before anything runs: the registry's checks (unknown tool,
    invalid arguments, the tool's own rules), then duplicates, the call limit, and at most one
    call with side effects per turn (each waits for a person)."""
    out = CheckedPlan(search=plan.search.strip())
    context = PlanContext(photos=list(photos), products=list(products or []), asset_ids={a.id for a in site.assets})
    seen: set[str] = set()
    for call in plan.calls:
        args, reason = registry.check(call.tool, call.args, context)
        key = f"{call.tool}:{sorted(args.items())}"
        if reason is None and key in seen:
            reason = "duplicate call"
        if reason is None and len(out.calls) >= max_calls:
            reason = f"more than {max_calls} tool calls in one turn"
        if reason is None and registry.get(call.tool).side_effects:
            first = next((c.tool for c in out.calls if registry.get(c.tool).side_effects), None)
            if first is not None:
                reason = f"one action with side effects per turn ({first} already waits for approval)"
        if reason:
            out.rejected.append({"tool": call.tool, "args": args, "reason": reason})
        else:
            seen.add(key)
            out.calls.append(ToolCall(tool=call.tool, args=args))
    return out


# ---- the deterministic router (no model) --------------------------------------------------------

_ID_BOUND = "A-Za-z0-9_-"  # what continues an id: GH-2 is not GH-2-RH, P-101 not P-1011
_CN_NUMERALS = "零〇一二两三四五六七八九十百"


def _name_pattern(name: str) -> str | None:
    """A regex for one id or alias in case-folded text. Ids (P-101) also match without the
    hyphen (p101); an alias's ASCII words and digits need ASCII boundaries, never ``\\b``
    (Python's \\w matches Chinese characters, so "泵P-101现在" has no \\b around P-101), and a
    number in an alias is not the start or end of a longer one ("1号温室" is not in "11号温室")."""
    n = " ".join(name.casefold().split())
    if not n:
        return None
    if re.fullmatch(r"[a-z0-9_-]+", n):
        return rf"(?<![{_ID_BOUND}]){re.escape(n).replace(chr(92) + '-', '-?')}(?![{_ID_BOUND}])"
    body = r"\s*".join(re.escape(part) for part in n.split(" "))
    first, last = n[0], n[-1]
    before = (rf"(?<![{_ID_BOUND}])" if first.isascii() and first.isalnum()
              else f"(?<![{_CN_NUMERALS}0-9])" if first in _CN_NUMERALS else "")
    after = (rf"(?![{_ID_BOUND}])" if last.isascii() and last.isalnum()
             else f"(?![{_CN_NUMERALS}])" if last in _CN_NUMERALS else "")
    return before + body + after


def mentions(text: str, names: list[str]) -> bool:
    low = text.casefold()
    return any(p is not None and re.search(p, low) for p in map(_name_pattern, names))


def _number(text: str) -> int | None:
    """12, 十二, 二十一, 两 → int (None: not a number)."""
    if text.isdigit():
        return int(text)
    if not text or any(c not in _CN_DIGITS and c != "十" for c in text):
        return None
    if "十" not in text:
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1 or (tens and tens not in _CN_DIGITS) or (ones and ones not in _CN_DIGITS):
        return None
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _compact(text: str) -> str:
    """A place reference reduced for comparison: case, spaces and hyphens dropped, numbers as digits
    ("Glass house 2", "温室二号", "gh-2" → "glasshouse2", "温室2号", "gh2")."""
    def digits(m: re.Match) -> str:
        n = _number(m.group(0))
        return m.group(0) if n is None else str(n)

    return re.sub(r"[零〇一二两三四五六七八九十]{1,3}", digits, re.sub(r"[\s\-_]+", "", text.casefold()))


# What people call a numbered place, on any site: "greenhouse 3", "zone 2", "温室3号", "三号温室", "2号棚".
_PLACE_WORDS_EN = r"(?:green\s?house|glass\s?house|zone|compartment|tunnel)"
_PLACE_WORDS_ZH = r"(?:温室|大棚|棚室|暖棚|日光温室|连栋温室)"
_NOT_A_WINDOW = r"(?!\s*(?:h|hrs?|hours?|d|days?|min|minutes?|weeks?|小时|天|周|分钟)(?![A-Za-z]))"
_GENERIC_PLACES = (
    rf"(?<![A-Za-z0-9_]){_PLACE_WORDS_EN}\s*(?:no\.?\s*|number\s*|#\s*)?{_NUM}(?![0-9A-Za-z]){_NOT_A_WINDOW}",
    rf"{_PLACE_WORDS_ZH}\s*(?:第\s*)?{_NUM}\s*号?(?![0-9])",
    rf"(?<![0-9{_CN_NUMERALS}])(?:第\s*)?{_NUM}\s*号\s*(?:{_PLACE_WORDS_ZH}|棚)",
)


def _place_patterns(site: SiteProfile) -> tuple[list[re.Pattern], list[re.Pattern]]:
    """(numbered place references, id-like tokens). Places: the generic forms and the site's own
    alias forms with any number ("Bay 1" → "bay N", "温室1号" → "温室N号"). Ids: a prefix the
    site's ids use followed by a number and any suffix ("GH-3", "P-102", "GH-3-TEMP"); with the
    hyphen in any case, without it only in capitals ("GH3"; "ph6" is a pH)."""
    places = list(_GENERIC_PLACES)
    numbers = rf"\d+|[{_CN_NUMERALS}]+"
    for z in site.zones:
        for alias in z.aliases:
            found = list(re.finditer(numbers, alias))
            if len(found) != 1 or _number(found[0].group(0)) is None:
                continue
            m = found[0]
            before, after = alias[:m.start()].casefold(), alias[m.end():].casefold()
            if not before.strip() and not after.strip():
                continue
            pat = r"\s*".join(re.escape(w) for w in before.split()) + (r"\s*" if before[-1:].isspace() else "")
            pat += _NUM + (r"\s*" if after[:1].isspace() else "") + r"\s*".join(re.escape(w) for w in after.split())
            lead = "(?<![A-Za-z0-9_])" if before[:1].isascii() and before[:1].isalnum() else (
                f"(?<![0-9{_CN_NUMERALS}])" if not before.strip() else "")
            tail = "(?![A-Za-z0-9_])" if after[-1:].isascii() and after[-1:].isalnum() else (
                "(?![A-Za-z0-9_])" + _NOT_A_WINDOW if not after.strip() else "")
            places.append(lead + pat + tail)
    prefixes = sorted({m.group(1) for x in (*site.zones, *site.assets, *site.sensors)
                       if (m := re.match(r"([A-Za-z]{1,4})-?\d", x.id))}, key=len, reverse=True)
    ids = []
    if prefixes:
        tail = r"(?:-[A-Za-z0-9]+)*(?![A-Za-z0-9_]|\.\d)"
        ids.append(re.compile(rf"(?<![A-Za-z0-9_\-])(?:{'|'.join(map(re.escape, prefixes))})-\d+{tail}", re.I | re.A))
        ids.append(re.compile(rf"(?<![A-Za-z0-9_\-])(?:{'|'.join(re.escape(p.upper()) for p in prefixes)})\d+{tail}", re.A))
    return [re.compile(p, re.I) for p in dict.fromkeys(places)], ids


def _known_places(site: SiteProfile) -> dict[str, str]:
    """Compact names of everything the site has → its id (zones, assets, sensors, aliases)."""
    known: dict[str, str] = {}
    for x in (*site.zones, *site.assets, *site.sensors):
        for name in (x.id, *getattr(x, "aliases", [])):
            known.setdefault(_compact(name), x.id)
    return known


def place_references(text: str, site: SiteProfile) -> tuple[list, list[str]]:
    """Numbered place references in ``text``: (zones they resolve to, references the site does
    not have, as written). "温室二号" resolves to the zone whose alias is "温室2号"; a generic
    greenhouse word with a number ("2号大棚", "greenhouse no. 2") to the one greenhouse whose
    id carries that number; "温室3号", "greenhouse 3", "GH-3" or "P-102" on a site without them
    are unknown."""
    known = _known_places(site)
    places, ids = _place_patterns(site)
    resolved, unknown, spans = [], [], []
    for pattern in ids:  # ids are named by named_in; here only the ones the site lacks
        for m in pattern.finditer(text):
            spans.append((m.start(), m.end()))
            if _compact(m.group(0)) not in known:
                unknown.append(m.group(0))
    for pattern in places:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in spans):
                continue
            spans.append((m.start(), m.end()))
            phrase = " ".join(m.group(0).split())
            hit = known.get(_compact(phrase))
            if hit is None and re.search(rf"{_PLACE_WORDS_EN}|{_PLACE_WORDS_ZH}|棚", phrase, re.I):
                # a generic greenhouse word: the one greenhouse whose id carries that number
                number = _number(next((g for g in m.groups() if g), ""))
                houses = [z for z in site.zones if z.kind in ("greenhouse", "propagation") and number is not None
                          and [int(d) for d in re.findall(r"\d+", z.id)] == [number]]
                hit = houses[0].id if len(houses) == 1 else None
            if hit is None:
                unknown.append(phrase)
            else:
                zone = next((z for z in site.zones if z.id == hit), None)
                if zone is not None and zone not in resolved:
                    resolved.append(zone)
    return resolved, list(dict.fromkeys(unknown))


def named_in(text: str, site: SiteProfile) -> tuple[list, list, list]:
    """The zones, assets and sensors a text names, by id or alias (or a numbered reference that
    resolves to a zone, e.g. "温室二号")."""
    zones = [z for z in site.zones if mentions(text, [z.id, *z.aliases])]
    zones += [z for z in place_references(text, site)[0] if z not in zones]
    return (zones, [a for a in site.assets if mentions(text, [a.id, *a.aliases])],
            [s for s in site.sensors if mentions(text, [s.id])])


def unknown_places(text: str, site: SiteProfile) -> list[str]:
    """Zone-like references (and asset / sensor ids) the site does not have, as written."""
    return place_references(text, site)[1]


def _hours(question: str) -> float:
    m = _HOURS.search(question)
    if not m:
        return 72 if re.search(r"\b(week|days)\b|一周|这周|几天", question, re.I | re.A) else 24
    raw, unit = m.group(1), m.group(2).lower()
    value = float(raw) if raw[0].isdigit() else float(_number(raw) or 0) or 1.0
    factor = 24 if unit.startswith(("d", "天")) else 168 if unit.startswith(("w", "周", "星")) else 1
    return min(744, max(1, value * factor))


def _word_pattern(word: str) -> str:
    return rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])" if word.isascii() else re.escape(word)


def _metrics(question: str) -> list[str]:
    """The measurements a question names, in METRIC_WORDS order. Longer words first, each using
    up its text; weak words only when nothing more specific was named."""
    low = question.casefold()
    found: set[str] = set()
    words = sorted(((w, m) for m, ws in METRIC_WORDS.items() for w in ws), key=lambda wm: -len(wm[0]))
    for word, metric in words:
        pattern = re.compile(_word_pattern(word))
        if pattern.search(low):
            found.add(metric)
            low = pattern.sub(lambda m: " " * len(m.group(0)), low)
    if _CURRENT.search(low):
        found.add("motor_current")
    if not found:
        found |= {m for m, ws in WEAK_METRIC_WORDS.items() if any(re.search(_word_pattern(w), low) for w in ws)}
    # "bearing temperature" is not the air temperature (nor is "hot" about equipment: _asset_metrics)
    if "bearing_temperature" in found:
        found.discard("air_temperature")
    return [m for m in METRIC_WORDS if m in found]


def _asset_metrics(metrics: list[str], assets: list, site: SiteProfile) -> list[str]:
    """About equipment, a temperature word means the equipment's own temperatures ("How hot is
    P-101?" → its bearing temperatures), never the air of the room it stands in."""
    if "air_temperature" not in metrics or not assets:
        return metrics
    ids = {a.id for a in assets}
    own = {s.metric for s in site.sensors if s.asset in ids}
    if "air_temperature" in own:
        return metrics
    hot = [m for m in dict.fromkeys(s.metric for s in site.sensors if s.asset in ids) if "temperature" in m]
    return list(dict.fromkeys(hot + [m for m in metrics if m != "air_temperature"]))


def reports_fault(text: str) -> bool:
    """Whether the text reports a fault ("P-101 vibration is rising", "the seal is leaking",
    "泵P-101跳闸了", "Why is P-101 running hot?"), as opposed to asking for a value or a
    status ("How hot is the bearing?", "Is the vibration high?", "有没有跳闸？") or naming a
    condition ("if it trips", "after a trip"). Limit settings ("the trip limit") are not events."""
    for clause in _CLAUSES.split(_LIMIT_PHRASE.sub(" ", text)):
        if _ASKS.search(clause):
            continue
        for m in _FAULT.finditer(clause):
            if not _CONDITION.search(clause[:m.start()]):
                return True
    return False


def deterministic_plan(question: str, site: SiteProfile, *, photos: list[str] | None = None,
                       products: list[str] | None = None, scope_zone: str | None = None,
                       scope_asset: str | None = None, lang: str = "en") -> RoutePlan:
    photos = photos or []
    events = _LIMIT_PHRASE.sub(" ", question)  # what the question reports, without the settings it names
    zones, assets, named_sensors = named_in(question, site)
    # "温室3号", "greenhouse 3", "GH-3" on a site without them: never read another zone's sensors instead
    unknown = unknown_places(question, site)
    if not zones and not assets and scope_zone and not unknown:
        zones = [z for z in site.zones if z.id == scope_zone]
    if not assets and scope_asset and not unknown:
        assets = [a for a in site.assets if a.id == scope_asset]
    # the measurement words of the question, not of the names it uses ("GH-1-TEMP" names one
    # sensor, "the heat pump" an asset)
    bare = question
    names = [n for x in (*named_sensors, *assets, *zones) for n in (x.id, *getattr(x, "aliases", []))]
    for name in sorted(names, key=len, reverse=True):
        bare = re.sub(_name_pattern(name) or "(?!)", " ", bare, flags=re.I)
    metrics = _asset_metrics(_metrics(bare), assets, site)

    sensors = list(named_sensors)
    if metrics and not (unknown and not (zones or assets)):
        places = {z.id for z in zones} | {a.zone for a in assets}
        for s in site.sensors:
            if s.metric in metrics and s not in sensors and (
                    (assets and s.asset in {a.id for a in assets}) or (not assets and (not places or s.zone in places))):
                sensors.append(s)
    calls: list[ToolCall] = []
    history = bool(_HISTORY.search(question))
    fault = reports_fault(question)
    check = bool(_CHECK.search(events))
    # A measurement word alone ("what soil moisture triggers irrigation?") is a knowledge
    # question; live data needs a place (zone, asset, sensor) or words like "now".
    live = bool(zones or assets or named_sensors or unknown) or bool(_LIVE.search(question))
    reference_only = bool(_REFERENCE.search(question)) and not (_LIVE.search(question) or history or fault)
    if reference_only:
        live = False
    if live and unknown:
        # The call as written, so validation refuses it with the site's reason (which names the
        # zones the site has) and the person hears that the place does not exist.
        tool = "site_check" if check else "sensor_latest"
        calls += [ToolCall(tool=tool, args={"target": u, **({"hours": _hours(question)} if check else {})})
                  for u in unknown[:2]]
    targets = [s.id for s in sensors][:3] or [x.id for x in (*assets, *zones)][:2]
    if not live:
        targets, sensors = [], []
    if history and sensors:
        calls += [ToolCall(tool="sensor_history", args={"sensor_id": s.id, "hours": _hours(question)}) for s in sensors[:2]]
    elif targets and (_NOW.search(question) or sensors or metrics or _FAULT.search(events)):  # "P-101跳闸了吗？" reads it
        calls += [ToolCall(tool="sensor_latest", args={"target": t}) for t in targets[:2]]
    if check and not reference_only and not (unknown and not (zones or assets)):
        target = (assets or zones or [None])[0]
        calls.append(ToolCall(tool="site_check", args={"hours": _hours(question), **({"target": target.id} if target else {})}))
    if assets and (fault or _ORDER_CREATE.search(question)):
        if not any(c.tool in ("sensor_latest", "sensor_history") for c in calls):
            calls.append(ToolCall(tool="sensor_latest", args={"target": assets[0].id}))
        calls.append(ToolCall(tool="create_work_order", args={
            "asset": assets[0].id, "problem": question.strip()[:2000],
            "priority": _priority(question),
        }))
    elif _ORDER_LIST.search(question) and not _ORDER_CREATE.search(question):
        calls.append(ToolCall(tool="list_work_orders", args={**({"asset": assets[0].id} if assets else {})}))
    calls += photo_calls(photos, products or [], question)
    return RoutePlan(calls=calls, search=search_query(question, site, zones, metrics, lang))


def _priority(question: str) -> str:
    return "high" if re.search(r"\b(trip\w*|alarm|smok\w*|leak\w*)\b|跳闸|报警|冒烟|泄漏|漏水", question, re.I | re.A) else "medium"


# ---- the model's share of routing ---------------------------------------------------------------

def rules_undecided(question: str, rules: RoutePlan, photos: list[str]) -> bool:
    """Whether the model should route this question. The rules decide whenever they planned a
    call, and for every question with no sign of live data (a knowledge question needs no tool,
    and a small model asked anyway invents sensor calls for it). Left to the model: live words
    without a place the site profile names ("is the tomato house warm enough now?")."""
    if rules.calls or photos:
        return False
    return bool(_LIVE.search(question) or _CHECK.search(_LIMIT_PHRASE.sub(" ", question)) or _ORDER_CREATE.search(question))


def constrain_model_plan(plan: RoutePlan, question: str, site: SiteProfile) -> RoutePlan:
    """What the model may decide is which tool and which target; everything the question does
    not state comes from the rules and the clock. Time windows end now and last as long as the
    question says (default 24 h) — a model writes plausible dates from its training data. A work
    order is only proposed when the question reports a fault or asks for an order, for an asset
    the question names."""
    _, assets, _ = named_in(question, site)
    asks_order = reports_fault(question) or bool(_ORDER_CREATE.search(question))
    calls: list[ToolCall] = []
    for call in plan.calls:
        args = {k: v for k, v in call.args.items() if k not in ("end", "bucket_minutes")}
        if "hours" in args or call.tool in ("sensor_history", "site_check"):
            args["hours"] = _hours(question)
        if call.tool == "create_work_order":
            if not asks_order or not assets:
                continue
            args = {"asset": assets[0].id, "problem": question.strip()[:2000], "priority": _priority(question)}
        calls.append(ToolCall(tool=call.tool, args=args))
    return RoutePlan(calls=calls, search=plan.search)


def search_query(question: str, site: SiteProfile, zones: list, metrics: list[str], lang: str) -> str:
    """The question plus the crop and growth stage of a named glasshouse: "is GH-2 too warm?" is
    answered by the crop guide's table for the stage GH-2 is in, which never mentions GH-2."""
    extra: list[str] = []
    for z in zones:
        if z.crop:
            extra.append(CROP_WORDS.get(z.crop, {}).get(lang, z.crop))
        if z.stage:
            extra.append(STAGE_WORDS.get(z.stage, {}).get(lang, z.stage))
    return " ".join([question.strip(), *dict.fromkeys(extra)])


def photo_calls(photos: list[str], products: list[str], question: str) -> list[ToolCall]:
    """An inspection per attached photo, for the product the question names (or the only one)."""
    product = next((p for p in products if p.casefold() in question.casefold()),
                   products[0] if len(products) == 1 else "")
    return [ToolCall(tool="inspect_image", args={"image_id": photo, "product": product}) for photo in photos]


def add_photo_calls(plan: RoutePlan, photos: list[str], products: list[str], question: str) -> RoutePlan:
    """A model may forget an attached photo: inspect every photo that has no call yet."""
    done = {c.args.get("image_id") for c in plan.calls if c.tool == "inspect_image"}
    extra = photo_calls([p for p in photos if p not in done], products, question)
    return plan.model_copy(update={"calls": [*plan.calls, *extra]})
