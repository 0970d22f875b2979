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

# What people call a measurement. Keys are the site profile's metric names.
METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "air_temperature": ("temperature", "temp", "hot", "cold", "heat", "温度", "气温", "冷", "热"),
    "relative_humidity": ("humidity", "rh", "湿度"),
    "co2": ("co2", "carbon dioxide", "二氧化碳"),
    "par": ("light", "ppfd", "par", "光照", "光强"),
    "dli": ("dli", "daily light", "光积分"),
    "substrate_moisture": ("water content", "moisture", "slab", "含水量", "基质水分"),
    "substrate_ec": ("slab ec", "root zone ec", "基质ec", "根区ec"),
    "feed_ec": ("feed ec", "ec", "供液ec", "电导"),
    "feed_ph": ("ph", "酸碱"),
    "vibration_rms": ("vibration", "vibrating", "振动", "震动"),
    "bearing_temperature": ("bearing", "轴承"),
    "discharge_pressure": ("discharge pressure", "pressure", "出口压力", "压力"),
    "suction_pressure": ("suction", "入口压力", "吸入压力"),
    "flow": ("flow", "流量"),
    "motor_current": ("current", "amps", "电流"),
    "tank_level": ("level", "液位", "水位"),
}
CROP_WORDS = {"tomato": {"zh": "番茄", "en": "tomato"}, "cucumber": {"zh": "黄瓜", "en": "cucumber"}}
STAGE_WORDS = {
    "propagation": {"zh": "育苗期", "en": "propagation"},
    "vegetative": {"zh": "定植期 营养生长", "en": "vegetative establishment"},
    "flowering": {"zh": "开花坐果期", "en": "flowering fruit set"},
    "fruiting": {"zh": "结果采收期", "en": "fruiting harvest"},
}

_NOW = re.compile(r"\b(now|current(ly)?|right now|at the moment|normal|ok|okay|status|reading)\b|现在|当前|目前|实时|正常|读数|状态", re.I)
_LIVE = re.compile(r"\b(now|current(ly)?|right now|at the moment|today|this morning|tonight)\b|现在|当前|目前|实时|今天|此刻", re.I)
_HISTORY = re.compile(r"\b(ris\w*|increas\w*|trend\w*|history|histor\w*|dropp\w*|falling|over the (last|past)|last \d+|"
                      r"since|yesterday|overnight|climb\w*)\b|趋势|上升|升高|下降|历史|过去|最近|昨天|昨晚|一直", re.I)
_CHECK = re.compile(r"\b(alarms?|anything wrong|problems?|excursions?|site check)\b|报警|告警|异常情况|有没有问题|有什么问题", re.I)
# "the alarm and trip limits" names settings, not an alarm that went off or a pump that tripped
_LIMIT_PHRASE = re.compile(r"\b(?:alarm|trip)(?: (?:and|or|/) (?:alarm|trip))? (?:limits?|values?|settings?|levels?|"
                           r"points?|thresholds?)\b|(?:报警|跳闸|联锁)(?:和(?:报警|跳闸|联锁))?(?:值|限值|设定值?|点)", re.I)
# What the documents answer: limits, ranges, intervals, steps. Without a sign of live data
# ("now", a trend, a fault) such a question needs no tool even when it names an asset.
_REFERENCE = re.compile(r"\b(limits?|ranges?|settings?|set ?points?|intervals?|how often|procedure|steps?|rated|"
                        r"specification|spec|design|at what)\b|限值|范围|设定|间隔|周期|多久|步骤|规程|额定|联锁值|在多少", re.I)
_FAULT = re.compile(r"\b(ris\w*|increas\w*|high|abnormal|leak\w*|nois\w*|hot|overheat\w*|tripp?\w*|fault\w*|fail\w*|"
                    r"broken|cavitat\w*|smok\w*)\b|升高|上升|异常|泄漏|漏水|噪音|异响|过热|跳闸|故障|损坏|冒烟", re.I)
_ORDER_CREATE = re.compile(r"\b(work order|raise an? order|open an? order|repair request)\b|开工单|报修|派工|建工单|创建工单", re.I)
_ORDER_LIST = re.compile(r"\b(work orders|open orders|pending orders)\b|工单", re.I)
_HOURS = re.compile(r"(\d+(?:\.\d+)?)\s*(h|hours?|hrs?|小时|days?|天|weeks?|周)", re.I)


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

def mentions(text: str, names: list[str]) -> bool:
    low = text.casefold()
    for name in names:
        n = name.casefold()
        if re.fullmatch(r"[\w-]+", n) and n.isascii():
            compact = re.escape(n).replace(r"\-", "-?")  # P-101, p101, P101
            if re.search(rf"(?<![\w-]){compact}(?![\w-])", low):
                return True
        elif n in low:
            return True
    return False


def named_in(text: str, site: SiteProfile) -> tuple[list, list, list]:
    """The zones, assets and sensors a text names, by id or alias."""
    return ([z for z in site.zones if mentions(text, [z.id, *z.aliases])],
            [a for a in site.assets if mentions(text, [a.id, *a.aliases])],
            [s for s in site.sensors if mentions(text, [s.id])])


def _hours(question: str) -> float:
    m = _HOURS.search(question)
    if not m:
        return 72 if re.search(r"\b(week|days)\b|一周|这周|几天", question, re.I) else 24
    value, unit = float(m.group(1)), m.group(2).lower()
    factor = 24 if unit.startswith(("d", "天")) else 168 if unit.startswith(("w", "周")) else 1
    return min(744, max(1, value * factor))


def _metrics(question: str) -> list[str]:
    low = question.casefold()
    found = []
    for metric, words in METRIC_WORDS.items():
        for w in words:
            pattern = rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w)
            if re.search(pattern, low):
                found.append(metric)
                break
    # "bearing temperature" is not the air temperature
    if "bearing_temperature" in found and "air_temperature" in found:
        found.remove("air_temperature")
    return found


def deterministic_plan(question: str, site: SiteProfile, *, photos: list[str] | None = None,
                       products: list[str] | None = None, scope_zone: str | None = None,
                       scope_asset: str | None = None, lang: str = "en") -> RoutePlan:
    photos = photos or []
    events = _LIMIT_PHRASE.sub(" ", question)  # what the question reports, without the settings it names
    zones, assets, named_sensors = named_in(question, site)
    if not zones and not assets and scope_zone:
        zones = [z for z in site.zones if z.id == scope_zone]
    if not assets and scope_asset:
        assets = [a for a in site.assets if a.id == scope_asset]
    metrics = _metrics(question)

    sensors = list(named_sensors)
    if metrics:
        places = {z.id for z in zones} | {a.zone for a in assets}
        for s in site.sensors:
            if s.metric in metrics and s not in sensors and (
                    (assets and s.asset in {a.id for a in assets}) or (not assets and (not places or s.zone in places))):
                sensors.append(s)
    calls: list[ToolCall] = []
    history = bool(_HISTORY.search(question))
    # A measurement word alone ("what soil moisture triggers irrigation?") is a knowledge
    # question; live data needs a place (zone, asset, sensor) or words like "now".
    live = bool(zones or assets or named_sensors) or bool(_LIVE.search(question))
    reference_only = bool(_REFERENCE.search(question)) and not (_LIVE.search(question) or history or _FAULT.search(events))
    if reference_only:
        live = False
    targets = [s.id for s in sensors][:3] or [x.id for x in (*assets, *zones)][:2]
    if not live:
        targets, sensors = [], []
    if history and sensors:
        calls += [ToolCall(tool="sensor_history", args={"sensor_id": s.id, "hours": _hours(question)}) for s in sensors[:2]]
    elif targets and (_NOW.search(question) or sensors or metrics):
        calls += [ToolCall(tool="sensor_latest", args={"target": t}) for t in targets[:2]]
    if _CHECK.search(events) and not reference_only:
        target = (assets or zones or [None])[0]
        calls.append(ToolCall(tool="site_check", args={"hours": _hours(question), **({"target": target.id} if target else {})}))
    if assets and (_FAULT.search(events) or _ORDER_CREATE.search(question)):
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
    return "high" if re.search(r"\b(trip\w*|alarm|smok\w*|leak\w*)\b|跳闸|报警|冒烟|泄漏", question, re.I) else "medium"


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
    reports_fault = bool(_FAULT.search(_LIMIT_PHRASE.sub(" ", question)) or _ORDER_CREATE.search(question))
    calls: list[ToolCall] = []
    for call in plan.calls:
        args = {k: v for k, v in call.args.items() if k not in ("end", "bucket_minutes")}
        if "hours" in args or call.tool in ("sensor_history", "site_check"):
            args["hours"] = _hours(question)
        if call.tool == "create_work_order":
            if not reports_fault or not assets:
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
