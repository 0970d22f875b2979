"""Live-data scenarios: questions about the sample site's sensors, asked through the whole agent
against the simulator, scored against what the sensor tools say.

Each scenario (``evals/scenarios/scenarios.jsonl``, one JSON object a line) is a question in
Chinese or English, a simulation (fixed seed, faults, the clock that is "now", readings to leave
out), the tool calls the question needs, and the tool call whose result is the truth. Nothing
about the answer is written by hand: for every run the truth is computed from the simulated
store through the same registry and clock the agent uses, and mapped to the claim vocabulary

    normal | high | low | no_data | stopped

(warning / alarm / trip / emergency above the limits → high, below → low; no reading, a stale
or bad-quality reading, an unknown zone → no_data; a pump that is off → stopped) plus the
value. An independent judge (``judge``, which shares no code with the assistant) reads the
answer text and extracts the statuses it claims about the scenario's target in either language,
and the numbers it states. Scored per scenario:

- tools: every expected call was made (tool and its key argument: target / sensor_id);
- agreement: the answer claims the truth's status and nothing the data does not support (a
  question that asks only for a value may claim nothing if it states the value), and states
  the value within rounding when the scenario asks for one;
- unsupported claim: a status the data does not support (e.g. "normal" with no data).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.sensors.simulator import SiteSimulator
from tools.sensors.timestamps import to_ms
from tools.site import SiteProfile

if TYPE_CHECKING:
    from assistant.llm import LoadedModel
    from assistant.settings import Settings
    from knowledge.embedding import Embedder

SCENARIO_FILE = Path(__file__).resolve().parent / "scenarios" / "scenarios.jsonl"
STATUSES = ("normal", "high", "low", "no_data", "stopped")
OUT_OF_RANGE = {"warning": 1, "alarm": 2, "trip": 3, "emergency": 3}
SENSOR_TOOLS = ("sensor_latest", "sensor_history", "site_check")


# ---- the scenario set ---------------------------------------------------------------------------

class Drop(BaseModel):
    """Readings left out of the store: all of a zone / asset / sensor, or only its last hours."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    target: str
    last_hours: float | None = Field(None, gt=0)


class Simulation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    end: str = Field(..., description="Site-local ISO time: the end of the stored readings and the turn's clock.")
    hours: float = Field(..., gt=0, le=744, description="Readings stored: from end - hours to end.")
    seed: int = 0
    faults: tuple[str, ...] = ()
    run_hours: float | None = Field(
        None, gt=0, description="Length of the simulated run when longer than what is stored (a wear ramp that "
        "would end after 'now'); readings after 'now' are not stored.")
    drop: tuple[Drop, ...] = ()


class ExpectedCall(BaseModel):
    """A call the question needs: the tool and the accepted values of its key argument."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: Literal["sensor_latest", "sensor_history", "site_check"]
    target: tuple[str | None, ...] = Field(..., description="Accepted target / sensor_id values (None: whole site).")

    @field_validator("target", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if v is None or isinstance(v, str) else v


class TruthCall(BaseModel):
    """The tool call whose result is the truth."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: Literal["sensor_latest", "sensor_history", "site_check"]
    args: dict[str, Any]

    @property
    def target(self) -> str | None:
        return self.args.get("target") or self.args.get("sensor_id")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    lang: Literal["zh", "en"]
    question: str
    simulation: Simulation
    expect_tools: tuple[ExpectedCall, ...] = Field(
        ..., description="Calls the answer needs; empty = no sensor tool should run (e.g. a zone the site lacks).")
    truth: TruthCall
    asks: Literal["status", "value"] = "status"
    value: Literal["latest", "min", "max", "mean", "last"] | None = Field(
        None, description="The value the answer should state (latest reading, or a statistic of the window).")
    names: tuple[str, ...] | None = Field(
        None, description="What the answer calls the target, when the site profile does not know it.")


def load_scenarios(path: Path | None = None) -> list[Scenario]:
    path = path or SCENARIO_FILE
    out, seen = [], set()
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            s = Scenario.model_validate_json(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{i}: {exc}") from None
        if s.id in seen:
            raise ValueError(f"{path}:{i}: duplicate scenario id {s.id!r}")
        seen.add(s.id)
        out.append(s)
    return out


# ---- simulation ---------------------------------------------------------------------------------

def clock_of(site: SiteProfile, sim: Simulation) -> datetime:
    end = datetime.fromisoformat(sim.end)
    return end if end.tzinfo else end.replace(tzinfo=site.tz)


def simulate_into(store, site: SiteProfile, sim: Simulation, batch: int = 5000) -> int:
    """The simulation's readings up to its clock into ``store``, less the dropped ones; returns
    the number stored."""
    end = clock_of(site, sim)
    end_ms = to_ms(end)
    run_hours = max(sim.run_hours or sim.hours, sim.hours)
    cutoff: dict[str, int] = {}  # sensor id → readings after this ms are left out
    for d in sim.drop:
        sensors = site.sensors_of(d.target)
        if not sensors:
            raise ValueError(f"drop: the site has no zone, asset or sensor {d.target!r}")
        cut = end_ms - int(d.last_hours * 3_600_000) if d.last_hours else -1
        cutoff.update({s.id: cut for s in sensors})
    pending: list = []
    stored = 0
    for ts, readings in SiteSimulator(site, end - timedelta(hours=sim.hours), run_hours, sim.faults, seed=sim.seed):
        if ts > end_ms:
            break
        pending.extend(r for r in readings if r.ts <= cutoff.get(r.sensor_id, end_ms))
        if len(pending) >= batch:
            stored += store.insert(pending)
            pending = []
    return stored + store.insert(pending)


# ---- the truth, from the tools ------------------------------------------------------------------

@dataclass
class Truth:
    status: str  # the status an answer should claim
    accept: set[str]  # every status the data supports (other sensors in scope, warning-level excursions)
    value: float | None = None
    unit: str | None = None
    summary: str = ""  # what the tool said

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "accept": sorted(self.accept), "value": self.value, "unit": self.unit,
                "summary": self.summary}


def reading_status(row: dict[str, Any]) -> str | None:
    """One sensor_latest reading in the claim vocabulary (None: not judged, e.g. no limits)."""
    status = row.get("status")
    if status in ("no_data", "bad_quality") or row.get("stale"):
        return "no_data"
    if status == "stopped":
        return "stopped"
    if status in OUT_OF_RANGE:
        return "low" if row.get("direction") == "low" else "high"
    return "normal" if status == "normal" else None


def truth_of(registry, scenario: Scenario) -> Truth:
    """Call the scenario's truth tool through ``registry`` (the agent's own, with its clock) and
    map the result to the claim vocabulary."""
    call = scenario.truth
    result = registry.call(call.tool, dict(call.args))
    summary = result.summary + (f": {result.error}" if result.error else "")
    if not result.ok:  # e.g. a zone the site does not have: there is nothing to read
        return Truth("no_data", {"no_data"}, summary=summary)
    data = result.data or {}
    if call.tool == "sensor_latest":
        return _latest_truth(data, scenario, summary)
    warned = _warning_directions(registry, call)
    if call.tool == "sensor_history":
        overall = data.get("overall")
        if not overall:
            return Truth("no_data", {"no_data"}, summary=summary)
        dirs = [x["direction"] for x in data.get("excursions") or []]
        status = dirs[0] if dirs else "normal"
        key = scenario.value if scenario.value in ("min", "max", "mean", "last") else "last"
        return Truth(status, {status, *dirs, *warned}, overall[key], data.get("unit"), summary)
    # site_check
    dirs = [x["direction"] for x in data.get("excursions") or []]
    silent = data.get("no_data") or []
    if dirs:
        status = dirs[0]
    elif silent and len(silent) >= data.get("sensors_checked", 0):
        status = "no_data"
    else:
        status = "normal"
    accept = {status, *dirs, *warned} | ({"no_data"} if silent else set())
    if status == "no_data":
        accept = {"no_data"}  # nothing was read: "no alarm" is not a finding
    return Truth(status, accept, summary=summary)


def _latest_truth(data: dict[str, Any], scenario: Scenario, summary: str) -> Truth:
    rows = data.get("readings") or []
    judged = [(r, reading_status(r)) for r in rows]
    judged = [(r, s) for r, s in judged if s is not None]
    if not judged:
        return Truth("no_data", {"no_data"}, summary=summary)
    out = sorted((r for r, s in judged if s in ("high", "low")), key=lambda r: -OUT_OF_RANGE[r["status"]])
    statuses = {s for _, s in judged}
    if out:
        status = reading_status(out[0])
    else:
        status = next(s for s in ("stopped", "normal", "no_data") if s in statuses)
    value = unit = None
    if len(rows) == 1 and status != "no_data":
        value, unit = rows[0].get("value"), rows[0].get("unit")
    return Truth(status, statuses, value, unit, summary)


def _warning_directions(registry, call: TruthCall) -> list[str]:
    """Directions of warning-level excursions in the same window and scope: an answer that
    says "a little high" about a reading that was only outside the normal range is supported."""
    args = {"hours": call.args.get("hours", 24), "include_warnings": True, "limit": 100}
    if call.target:
        args["target"] = call.target
    result = registry.call("site_check", args)
    return [x["direction"] for x in (result.data or {}).get("excursions") or []] if result.ok else []


# ---- the judge: what an answer claims -----------------------------------------------------------
# Written for this evaluation; it shares no code with the assistant's routing or checks.

METRIC_TERMS: dict[str, tuple[str, ...]] = {
    "air_temperature": ("temperature", "temp", "warm", "cold", "hot", "cool", "温度", "气温", "冷", "热"),
    "relative_humidity": ("humidity", "humid", "rh", "湿度"),
    "co2": ("co2", "carbon dioxide", "二氧化碳"),
    "par": ("par", "ppfd", "light", "光照", "光强"),
    "dli": ("dli", "light integral", "光积分"),
    "substrate_moisture": ("water content", "moisture", "含水量", "基质水分"),
    "substrate_ec": ("slab ec", "root zone ec", "基质ec"),
    "feed_ec": ("feed ec", "供液ec"),
    "feed_ph": ("ph",),
    "vibration_rms": ("vibration", "振动", "震动"),
    "bearing_temperature": ("bearing", "轴承"),
    "discharge_pressure": ("discharge", "pressure", "出口压力", "压力"),
    "suction_pressure": ("suction", "inlet", "吸入", "入口压力", "进口压力"),
    "flow": ("flow", "流量"),
    "motor_current": ("motor current", "amps", "电流"),
    "tank_level": ("tank level", "water level", "tank", "液位", "水位"),
}

_CITE = re.compile(r"\s*\[\d+(?:\s*[,，、]\s*\d+)*\]")
_QUOTED = re.compile(r"«[^»]*»|“[^”]*”|「[^」]*」")
# limits, not findings: "(normal 16.0–18.0, night)", "正常范围为20–24 °C", "normal range is 20-24"
_RANGE = r"-?\d+(?:\.\d+)?\s*(?:°C|%|ppm|mm/s|m|bar)?\s*(?:–|—|-|~|～|至|到|to)\s*-?\d+(?:\.\d+)?"
_LIMIT_TEXT = re.compile(
    rf"\((?:normal|target)[^()]*\)|（(?:正常|目标)[^（）]*）|\([^()]*{_RANGE}[^()]*\)|（[^（）]*{_RANGE}[^（）]*）"
    rf"|(?:normal|target|acceptable)\s+(?:range|band|limits?)\s*(?:is|are|of|:|=)?\s*(?:from\s+)?{_RANGE}"
    rf"|(?:正常|目标|适宜)(?:范围|区间|值)?\s*(?:为|是|：|:)\s*{_RANGE}", re.I)
_TIMES = re.compile(r"\b\d{1,2}-\d{1,2}\s+\d{1,2}:\d{2}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b"
                    r"|\d{4}-\d{2}-\d{2}(?:T[\d:]+)?")
_TAG = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,5}(?:-\d+)+(?:-[A-Za-z0-9]+)*(?![A-Za-z0-9])")  # GH-2-TEMP, P-101
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?\d+(?:\.\d+)?")
_CONDITIONAL = re.compile(
    r"\b(if|unless|should|must|needs? to|in case)\b|^\s*when(ever)?\b"
    r"|如果|假如|若|一旦|应该|应当|应控制|应保持|须|必须|当.{0,24}时|时\s*$|的时候", re.I)
_UNSURE = re.compile(
    r"[?？]|\bwhether\b|\bnot (possible|able) to\b|\bunknown\b"
    r"|\b(cannot|can't|can not|unable to|impossible to)\s+(be\s+)?(determine|tell|say|confirm|judge|assess)"
    r"|是否|吗|有无|有没有|无法|不能确定|不能判断|不确定|不清楚|难以判断", re.I)
# a table row as quoted text: "Parameter: Flow; Tag: FT-101; Normal range: 40–55 m³/h; Alarm: below 20 m³/h"
_ROW_CELL = re.compile(r"(?:^|[;；])\s*[^:：;；]{1,30}[:：]\s")
# a sentence that names nothing continues the last one named only when it speaks of the same thing
_ANAPHOR = re.compile(
    r"^\s*(it|its|this|that|these|they|there|the (reading|value|level)s?|all (its |the )?(readings|sensors|values))\b"
    r"|^\s*(它|其|该|这|此|读数|数值|所有读数|各项读数)", re.I)
_NO_DATA = re.compile(
    r"\bno (recent |current |live )?(data|readings?|values?|measurements?)\b|\bno sensor data\b|\bstale\b"
    r"|\bnot reporting\b|\bsent nothing\b|\bnothing (was )?(received|reported)\b|\bmissing (data|readings)\b"
    r"|\bdata (is|are) (missing|unavailable)\b|\bno such (zone|greenhouse|glasshouse|sensor)\b"
    r"|\b(does not|doesn't) exist\b|\b(there is|has) no (zone|greenhouse|glasshouse|sensor)\b"
    r"|没有(任何)?(实时)?(数据|读数)|无(实时)?(数据|读数)|暂无(数据|读数)|数据(缺失|过期|已过期|不足)"
    r"|没有.{0,6}的?(数据|读数)|未上报|没有上报|无法获取|不存在|没有(这个|该)(温室|区域|传感器)", re.I)
_NOTHING_WRONG = re.compile(
    r"\bno\s+(alarm|excursion|warning|problem|fault)s?\b|\bnothing\s+(wrong|abnormal|unusual)\b"
    r"|(?:无|没有|未见|未发现|没有发现|并无)(?:任何)?(?:异常|报警|告警|问题)|一切正常", re.I)
_NOT_NORMAL = re.compile(
    r"(\bnot|n't|\bno longer|\bnever)\s+(\w+\s+){0,2}(normal(ly)?|ok|okay|fine|within)\b|\babnormal\b"
    r"|\boutside\s+(the\s+)?(normal\s+|acceptable\s+|target\s+)?(range|limits?|band)\b"
    r"|不正常|非正常|异常|不在(正常)?范围", re.I)
_NOT_OUT = re.compile(
    r"(\bnot|n't|\bno longer|\bnever)\s+(\w+\s+){0,1}(above|below|too\s+\w+|high|low|exceed\w*|over)\b"
    r"|(?:不|没有|没|未|并未|并不|无)(?:\S{0,2}?)(?:偏高|过高|超出|超过|超标|高于|偏低|过低|低于|太高|太低)", re.I)
# "above" / "below" as a finding is followed by what was passed ("below 10.0", "above the alarm"),
# not used as an adverb ("the boundaries below are ...")
_LEVEL = (r"(?=\s+(the\s+|its\s+|their\s+)?([-+]?\d|normal|alarm|limit|range|target|set|minimum|maximum|warning|"
          r"emergency|trip|upper|lower|day|night|threshold))")
# what a clause about the whole site talks about when it names no zone, asset or sensor
_SITE_WORDS = (r"\b(excursions?|alarms?|warnings?|trips?|emergenc(y|ies)|sensors?|readings?|site|everything|all)\b"
               r"|报警|告警|预警|异常|传感器|读数|现场|全场|一切|所有")
_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("normal", re.compile(
        r"\bnormal(ly)?\b(?!\s+(range|band|limits?|values?|levels?|operating|conditions?|shutdown|stop))"
        r"|\bwithin\s+(the\s+)?(\w+\s+){0,2}(range|limits?|band|targets?)\b|\bin\s+(the\s+)?(normal\s+)?range\b"
        r"|\b(ok|okay|fine|all clear)\b|在.{0,8}?范围(之)?内|处于.{0,8}?(正常|适宜|目标)(范围|区间)"
        r"|(?<![不非异])正常(?!范围|值|区间|停机|运行时|操作|工况)|未报警", re.I)),
    ("high", re.compile(
        rf"\babove\b{_LEVEL}|\bhigh(er)?\b|\btoo\s+(warm|hot|high|humid)\b|\bexceed\w*"
        r"|\bover\s+the\s+(limit|alarm|range)|\belevated\b|\boverheat\w*|偏高|过高|超出|超过|高于|太高|太热|过热|超标", re.I)),
    ("low", re.compile(
        rf"\bbelow\b{_LEVEL}|\blow(er)?\b|\btoo\s+(cold|cool|low|dry)\b|\bunder\s+the\s+(limit|alarm|range)"
        r"|偏低|过低|低于|太低|太冷|过冷|不足", re.I)),
    ("stopped", re.compile(
        r"\bstopped\b|\bnot running\b|\bis off\b|\btripped\b|\bshut down\b"
        r"|停机|停止运行|停运|未运行|没有运行|不在运行|跳闸", re.I)),
)


@dataclass
class Claim:
    statuses: list[str] = field(default_factory=list)  # in order of first appearance; "abnormal" = no direction
    numbers: list[str] = field(default_factory=list)  # numbers stated about the target

    @property
    def claimed(self) -> str:
        return "+".join(self.statuses) if self.statuses else "none"


def _name_pattern(names: Iterable[str]) -> re.Pattern | None:
    parts = []
    for n in sorted({n for n in names if n}, key=len, reverse=True):
        if n.isascii():
            # GH-2 is not GH-2-RH; ASCII bounds, so 泵P-101 names P-101
            parts.append(rf"(?<![A-Za-z0-9_-]){re.escape(n)}(?![A-Za-z0-9_-])")
        else:
            parts.append(re.escape(n))
    return re.compile("|".join(parts), re.I) if parts else None


def _split(line: str) -> list[list[str]]:
    """Sentences of a line, each as its clauses."""
    sentences = re.split(r"(?<=[。！？!?])|(?<=\.)\s+", line)
    out = [[c for c in re.split(r"[，,、：:；;]|\s[—–]\s", s or "") if re.search(r"\w", c)] for s in sentences]
    return [s for s in out if s]


def _metric_of(clause: str, low: str) -> set[str]:
    found = set()
    for metric, terms in METRIC_TERMS.items():
        for t in terms:
            if (re.search(rf"(?<![a-z]){re.escape(t)}(?![a-z])", low) if t.isascii() else t in clause):
                found.add(metric)
                break
    if "bearing_temperature" in found:
        found.discard("air_temperature")  # "bearing temperature" is not the air
    return found


def _clause_claims(clause: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    text = clause

    def take(pattern: re.Pattern, status: str) -> None:
        nonlocal text
        for m in pattern.finditer(text):
            found.append((m.start(), status))
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)

    unsure = bool(_UNSURE.search(text))
    take(_NO_DATA, "no_data")
    take(_NOTHING_WRONG, "normal")
    take(_NOT_NORMAL, "abnormal")
    take(_NOT_OUT, "normal")
    for status, pattern in _PATTERNS:
        take(pattern, status)
    if unsure:  # "无法确定…是否正常", "cannot tell whether it is normal": only "no data" is a claim there
        found = [f for f in found if f[1] == "no_data"]
    return found


def judge(answer: str, names: Iterable[str] | None = None, others: Iterable[str] = (), metric: str | None = None,
          strong: Iterable[str] = ()) -> Claim:
    """The statuses an answer claims about a target, and the numbers it states about it.

    ``names``: what the target is called (ids, aliases, its sensors; None = the whole site: a
    clause counts when it names anything in ``others`` or talks of alarms, sensors, readings);
    ``others``: the names of everything else on the site, so a clause about another zone or
    sensor is not read as one about the target; ``metric``: the measurement
    asked about, so "温室2号湿度正常" does not answer a question about its temperature unless it
    names ``strong`` (the sensor itself). Clauses that state limits, conditions ("if", "应") or
    doubt ("是否", "whether") are not claims, nor are quoted table rows; a clause without a
    name belongs to the one its sentence names next (clauses before the first name) or last,
    else to the one named earlier in its line when it speaks of the same measurement or
    refers back ("it", "该", "there"). When no clause names the target, the sentences that name
    nothing on the site but speak of the metric asked (and those that continue them) are read:
    "The vibration over the last 6 hours is …"."""
    other = _name_pattern(others)
    if names is None:
        target = re.compile(_SITE_WORDS + (f"|{other.pattern}" if other else ""), re.I)
        other = None
    else:
        target = _name_pattern(names) or re.compile(r"(?!)")
    sure = _name_pattern(strong)
    named: list[str] = []
    unnamed: list[str] = []
    for line in _QUOTED.sub(" ", answer or "").splitlines():
        state = "unknown"
        for chunk in _CITE.split(line):  # a cited statement, or a quoted sentence or table row
            if chunk.count("|") >= 2 or len(_ROW_CELL.findall(chunk)) >= 2:  # a table row: limits, not a finding
                continue
            for sentence in _split(_LIMIT_TEXT.sub(" ", chunk)):
                named_as = [_named(c, target, other) for c in sentence]
                first = next((n for n in named_as if n), None)
                whole = " ".join(sentence)
                about_metric = bool(metric) and metric in _metric_of(whole, whole.casefold())
                if first:  # clauses before the first name belong to it ("没有数据，无法确定温室2号…")
                    state = first
                elif state in ("target", "implied") and (_ANAPHOR.search(sentence[0]) or about_metric):
                    pass  # "GH-2 is at 16.9 °C. The temperature is within …", "… There were 2 excursions"
                else:  # names nothing: about the measurement asked ("The vibration over …"), or something else
                    state = "implied" if about_metric else "unknown"
                for clause, name in zip(sentence, named_as):
                    state = name or state
                    _collect(clause, state, metric, sure, named, unnamed)
    clauses = named or unnamed
    claim = Claim()
    for c in clauses:
        for _, status in sorted(_clause_claims(c)):
            if status not in claim.statuses:
                claim.statuses.append(status)
        claim.numbers += _NUMBER.findall(_TAG.sub(" ", _TIMES.sub(" ", c)))
    return claim


def _named(clause: str, target: re.Pattern, other: re.Pattern | None) -> str | None:
    if target.search(clause):
        return "target"
    if other is not None and other.search(clause):
        return "other"
    return None


def _collect(clause: str, state: str, metric: str | None, sure: re.Pattern | None, named: list[str],
             unnamed: list[str]) -> None:
    if _CONDITIONAL.search(clause):
        return
    low = clause.casefold()
    metrics = _metric_of(clause, low)
    if metric and metrics and metric not in metrics and not (sure and sure.search(clause)):
        return  # about another measurement of the same place
    if state == "target":
        named.append(clause)
    elif state == "implied":
        unnamed.append(clause)


def value_stated(numbers: Iterable[str], value: float | None) -> bool:
    """A stated number equals the value as rounded to the digits it was written with (or to
    within half a unit of its last digit, e.g. 16.94 stated as 16.9 or 17)."""
    if value is None:
        return True
    for n in numbers:
        decimals = len(n.split(".", 1)[1]) if "." in n else 0
        if abs(float(n) - value) <= 0.5 * 10 ** -decimals + 1e-9:
            return True
    return False


def target_names(site: SiteProfile, target: str | None) -> tuple[list[str] | None, list[str], str | None, list[str]]:
    """(names, others, metric, strong) of a target for the judge (target None: the whole site)."""
    everything: list[str] = []
    for z in site.zones:
        everything += [z.id, *z.aliases]
    for a in site.assets:
        everything += [a.id, *a.aliases]
    everything += [s.id for s in site.sensors]
    if target is None:  # the whole site: a clause counts when it names anything on it or alarms in general
        return None, everything, None, []
    names: list[str] = [target]
    metric, strong = None, []
    sensor = next((s for s in site.sensors if s.id == target), None)
    zone = next((z for z in site.zones if z.id == target), None)
    asset = next((a for a in site.assets if a.id == target), None)
    if sensor is not None:
        metric, strong = sensor.metric, [sensor.id]
        z = next(z for z in site.zones if z.id == sensor.zone)
        names += [z.id, *z.aliases]
        if sensor.asset:
            a = next(a for a in site.assets if a.id == sensor.asset)
            names += [a.id, *a.aliases]
    elif zone is not None:
        names += [*zone.aliases, *(s.id for s in site.sensors if s.zone == zone.id)]
        for a in site.assets:
            if a.zone == zone.id:
                names += [a.id, *a.aliases]
    elif asset is not None:
        names += [*asset.aliases, *(s.id for s in site.sensors if s.asset == asset.id)]
    others = [n for n in everything if n.casefold() not in {x.casefold() for x in names}]
    return names, others, metric, strong


# ---- scoring ------------------------------------------------------------------------------------

def key_arg(call: dict[str, Any]) -> str | None:
    args = call.get("args") or {}
    return args.get("target") or args.get("sensor_id")


def tools_agree(scenario: Scenario, calls: list[dict[str, Any]]) -> bool:
    sensor_calls = [c for c in calls if c.get("tool") in SENSOR_TOOLS]
    if not scenario.expect_tools:
        return not sensor_calls
    return all(any(c["tool"] == e.tool and key_arg(c) in e.target for c in sensor_calls) for e in scenario.expect_tools)


def score(scenario: Scenario, truth: Truth, claim: Claim) -> dict[str, Any]:
    """Agreement of one answer's claim with the truth, and whether it claims something unsupported."""
    claims = set(claim.statuses)
    directional = bool(truth.accept & {"high", "low"})
    unsupported = sorted(c for c in claims if c not in truth.accept and not (c == "abnormal" and directional))
    value_ok = scenario.value is None or truth.status == "no_data" or value_stated(claim.numbers, truth.value)
    if scenario.asks == "value" and truth.status != "no_data":
        status_ok = not unsupported  # a value question may leave the status unsaid
    else:
        status_ok = truth.status in claims and not unsupported
    return {"agree": status_ok and value_ok, "status_ok": status_ok, "value_ok": value_ok, "unsupported": unsupported}


# ---- the run ------------------------------------------------------------------------------------

def evaluate_scenarios(settings: Settings, model: LoadedModel | None = None, limit: int | None = None, *,
                       scenarios: list[Scenario] | None = None, ids: Iterable[str] | None = None,
                       embedder: Embedder | None = None, index_dir: Path | None = None,
                       details: bool = False) -> dict[str, Any]:
    """Every scenario (or the first ``limit``, or those in ``ids``) through the agent with
    ``model`` (None: extractive mode), each with fresh services over the sample knowledge
    (indexed once per run unless ``index_dir`` is given), its own simulated store and a clock
    fixed at the simulation's end."""
    import shutil

    from assistant.llm import LoadedModel
    from assistant.llm.extractive import ExtractiveModel
    from assistant.settings import Settings as _Settings
    from assistant.wiring import build_services
    from evals.retrieval import percentile_ms
    from knowledge.builder import build_index
    from knowledge.embedding import make_embedder

    chosen = list(scenarios) if scenarios is not None else load_scenarios()
    if ids is not None:
        wanted = list(ids)
        unknown = sorted(set(wanted) - {s.id for s in chosen})
        if unknown:
            raise ValueError(f"unknown scenario id(s): {', '.join(unknown)}")
        chosen = [s for s in chosen if s.id in wanted]
    if limit is not None:
        chosen = chosen[:limit]
    embedder = embedder or make_embedder(settings.embedding, settings.home)
    loaded = model or LoadedModel(ExtractiveModel(embedder, reason="evaluation of extractive mode"),
                                  "extractive", "extractive", "evaluation of extractive mode")
    label = "extractive" if loaded.mode != "llm" else str(getattr(loaded.model, "name", None)
                                                           or settings.llm.llamacpp.model)
    work = Path(tempfile.mkdtemp(prefix="onsite-eval-scenarios-"))
    records: list[dict[str, Any]] = []
    try:
        if index_dir is None:
            index_home = work / "index-home"
            build_index([settings.samples_dir], _Settings(home=index_home, embedding=settings.embedding),
                        embedder=embedder)
            index_dir = index_home / "index"
        for i, scenario in enumerate(chosen):
            home = work / f"s{i:03d}"
            home.mkdir()
            (home / "index").symlink_to(index_dir, target_is_directory=True)
            records.append(_run_one(scenario, settings.model_copy(update={"home": home}), loaded, embedder,
                                    build_services))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = summarise(records)
    result.update({"mode": loaded.mode, "model": label,
                   "turn_ms": {"p50": percentile_ms([r["turn_ms"] for r in records], 50),
                               "p95": percentile_ms([r["turn_ms"] for r in records], 95)}})
    if details:
        result["results"] = records
    return result


def _run_one(scenario: Scenario, settings: Settings, loaded: LoadedModel, embedder: Embedder, build_services) -> dict:
    from tools.site import load_site_profile

    site = load_site_profile(settings.site_profile)
    now = clock_of(site, scenario.simulation)
    services = build_services(settings, loaded=loaded, embedder=embedder, site=site, clock=lambda: now)
    try:
        simulate_into(services.parts.sensor_store, site, scenario.simulation)
        truth = truth_of(services.parts.agent.deps.registry, scenario)
        t = time.perf_counter()
        error = None
        try:
            answer = services.turns.answer(scenario.question, user="evaluation")
            text, calls = answer.text, [{"tool": r["tool"], "args": r["args"]} for r in answer.tool_results]
            mode = answer.mode
            calls += [{"tool": p["tool"], "args": p.get("args") or {}} for p in answer.pending]
        except Exception as exc:  # noqa: BLE001 - a failed turn is a failed scenario, not a failed run
            text, calls, error, mode = "", [], f"{type(exc).__name__}: {exc}", None
        turn_ms = (time.perf_counter() - t) * 1000
    finally:
        services.close()
    names, others, metric, strong = target_names(site, scenario.truth.target)
    if scenario.names is not None:
        names = list(scenario.names)
    claim = judge(text, names, others, metric, strong)
    scored = score(scenario, truth, claim)
    return {"id": scenario.id, "lang": scenario.lang, "question": scenario.question, "truth": truth.to_dict(),
            "claimed": claim.claimed, "numbers": claim.numbers[:12], **scored,
            "tools_ok": tools_agree(scenario, calls),
            "calls": [f"{c['tool']}({key_arg(c) or ''})" for c in calls], "answer": text, "error": error,
            "answer_mode": mode, "turn_ms": round(turn_ms, 1)}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    def figures(rs: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(rs)
        return {"agreement": round(sum(r["agree"] for r in rs) / n, 4) if n else None,
                "unsupported_claims": sum(bool(r["unsupported"]) for r in rs),
                "questions": n,
                "tool_agreement": round(sum(r["tools_ok"] for r in rs) / n, 4) if n else None,
                # answers written by the model (the rest are extracts: no model, or a fallback after failed checks)
                "model_answer_rate": round(sum(r["answer_mode"] == "llm" for r in rs) / n, 4) if n else None}

    out = figures(records)
    out["by_lang"] = {lang: figures([r for r in records if r["lang"] == lang])
                      for lang in sorted({r["lang"] for r in records})}
    out["failures"] = [
        {"id": r["id"], "question": r["question"], "truth": r["truth"], "claimed": r["claimed"],
         "unsupported": r["unsupported"], "value_ok": r["value_ok"], "tools_ok": r["tools_ok"], "calls": r["calls"],
         "answer_mode": r["answer_mode"],
         "answer": r["answer"][:300], **({"error": r["error"]} if r["error"] else {})}
        for r in records if not r["agree"] or r["unsupported"] or not r["tools_ok"]]
    return out
