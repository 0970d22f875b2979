"""Daily advice per greenhouse zone: the previous day's summary (tools/advice/day_summary.py), and
for each finding what to change today, quoted from the crop guide of the zone's crop in the zone's
language and cited ([n] → doc, section, page).

The advice dated D reads the local day D-1 and is made once, at or after ``advice.hour`` on D (the
scheduler, assistant/advice_scheduler.py) or on demand once D-1 is over; it is stored once per
(zone, D) (tools/advice/store.py) and pushed from there (tools/advice/push_source.py).

Extract mode (no model): a fixed template with the numbers and the best sentences of the cited
passage, labelled. With a model: the model rewrites the template; its text is kept only if every
[n] marker of the template survives and no other appears — otherwise the template is shown and
the advice says why.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, date as Date, datetime, time, timedelta
from typing import Any, Callable

from assistant import advice_text as T
from assistant.llm.base import ChatMessage, GenerationOptions, collect
from assistant.llm.extractive import ExtractiveModel
from knowledge.retrieval import Retriever
from knowledge.types import Evidence
from tools.advice.day_summary import DaySummary, Finding, advised_zones, growing_zone, summarize_day
from tools.advice.settings import AdviceSettings
from tools.advice.store import AdviceStore, StoredAdvice
from tools.errors import ToolInputError
from tools.sensors.store import SensorStore
from tools.site import SiteProfile

log = logging.getLogger(__name__)
MARKER = re.compile(r"\[(\d{1,3})\]")
PASSAGES = 4  # chunks of the guide looked at per finding (the section's pieces)


class Advisor:
    def __init__(self, site: SiteProfile, sensors: SensorStore, retriever: Retriever, store: AdviceStore,
                 settings: AdviceSettings | None = None, *, model: Callable[[], Any] | None = None,
                 extractive: ExtractiveModel | None = None, clock: Callable[[], datetime] | None = None):
        self.site, self.sensors, self.retriever, self.store = site, sensors, lexical_only(retriever), store
        self.settings = settings or AdviceSettings()
        self.model = model or (lambda: None)
        # Sentences are picked by word overlap with the topic's query (written in the guide's own
        # words), not by the embedder: on 2 cores each embedding call costs 1-2 s, and a day's advice
        # made ~12 of them (measured: 15-19 s per zone with, see the report of `onsite advice --json`).
        self.extractive = extractive or ExtractiveModel(None, reason="daily advice")
        self.extractive.embedder = None
        self.extractive.max_sentences = 2
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    # -- when -------------------------------------------------------------------------------------
    def today(self) -> Date:
        return self.clock().astimezone(self.site.tz).date()

    def ready_at(self, advice_date: Date) -> datetime:
        return datetime.combine(advice_date, time(self.settings.hour), tzinfo=self.site.tz)

    def zones(self) -> list[str]:
        return advised_zones(self.site, self.settings)

    def lang_for(self, zone_id: str) -> str:
        return self.settings.zone_lang.get(zone_id, self.settings.lang)

    # -- get, make, store -------------------------------------------------------------------------
    def get(self, zone_id: str, advice_date: Date | None = None, *, make: bool = True) -> dict[str, Any]:
        """The stored advice for (zone, date); made now when the day it reads is over, else a
        ``pending`` note with the time it will be ready."""
        growing_zone(self.site, zone_id)  # NotFoundError names the known zones
        advice_date = advice_date or self.today()
        stored = self.store.get(zone_id, advice_date.isoformat())
        if stored is not None:
            return {"status": "ready", **stored.to_dict()}
        if advice_date > self.today() or not make:
            return {"status": "pending", "zone": zone_id, "date": advice_date.isoformat(),
                    "ready_at": self.ready_at(advice_date).isoformat()}
        if (self.today() - advice_date).days > self.settings.on_demand_days:
            return {"status": "unavailable", "zone": zone_id, "date": advice_date.isoformat(),
                    "note": f"no advice was made for {advice_date}; advice is made on request only for the last "
                            f"{self.settings.on_demand_days} days"}
        return {"status": "ready", **self.make(zone_id, advice_date).to_dict()}

    def make(self, zone_id: str, advice_date: Date) -> StoredAdvice:
        """Compose and store the advice for (zone, date) unless it is stored already (idempotent)."""
        with self._lock:  # the scheduler and an API request must not compose the same advice twice
            stored = self.store.get(zone_id, advice_date.isoformat())
            if stored is not None:
                return stored
            if advice_date > self.today():
                raise ToolInputError(f"advice for {advice_date} reads {advice_date - timedelta(days=1)}, "
                                     "which is not over yet")
            a = self.compose(zone_id, advice_date)
            stored, _ = self.store.save(zone_id, a["date"], a["lang"], a["severity"], a["headline"], a["body"],
                                        {k: a[k] for k in ("day", "mode", "mode_note", "summary", "findings",
                                                           "recommendations", "citations", "text")})
            return stored

    def regenerate(self, zone_id: str, advice_date: Date) -> StoredAdvice:
        growing_zone(self.site, zone_id)
        with self._lock:
            self.store.delete(zone_id, advice_date.isoformat())
        return self.make(zone_id, advice_date)

    def run_due(self) -> list[StoredAdvice]:
        """The scheduler's step: today's advice for every zone, once the configured hour has come."""
        now = self.clock().astimezone(self.site.tz)
        if not self.settings.enabled or now < self.ready_at(now.date()):
            return []
        made = []
        for zone_id in self.zones():
            if self.store.get(zone_id, now.date().isoformat()) is None:
                try:
                    made.append(self.make(zone_id, now.date()))
                except Exception:  # noqa: BLE001 - one zone's failure must not stop the others
                    log.exception("advice for %s on %s failed", zone_id, now.date())
        return made

    # -- composing --------------------------------------------------------------------------------
    def compose(self, zone_id: str, advice_date: Date) -> dict[str, Any]:
        lang = self.lang_for(zone_id)
        day = advice_date - timedelta(days=1)
        summary = summarize_day(self.site, self.sensors, zone_id, day, self.settings)
        citations: list[dict[str, Any]] = []
        recommendations = [self._recommend(f, summary, lang, citations) for f in summary.findings]
        text = _template(summary, advice_date, recommendations, lang)
        mode, note, body = "extractive", "", text
        model = self.model()
        if model is not None and getattr(model, "mode", "extractive") == "llm" and summary.findings:
            body, mode, note = self._rewrite(model, text, lang)
        label = T.WORDS[lang]["label_extractive"] if mode == "extractive" else \
            T.WORDS[lang]["label_fallback"].format(why=note) if mode == "fallback" else T.WORDS[lang]["label_llm"]
        sources = _sources(citations, lang)
        full = "\n\n".join(p for p in (label, body, sources) if p)
        return {"zone": zone_id, "date": advice_date.isoformat(), "day": day.isoformat(), "lang": lang,
                "severity": "warning" if summary.findings else "info", "headline": _headline(summary, lang),
                "body": full, "text": body, "mode": mode, "mode_note": note, "summary": summary.to_dict(),
                "findings": [r["finding"] for r in recommendations], "recommendations": recommendations,
                "citations": citations}

    def _recommend(self, f: Finding, summary: DaySummary, lang: str, citations: list[dict]) -> dict[str, Any]:
        out: dict[str, Any] = {"finding": {**f.__dict__, "topic": f.topic}, "sentences": [], "citations": []}
        found = T.topic(f.metric, f.direction, f.period)
        if found is None:
            return out
        query = found[1] if lang == "zh" else found[0]
        sections = found[2]
        if f.metric == "air_temperature" and f.direction == "low" and f.period == "night" and not f.alarm_minutes:
            sections = ("5.2", "5.3")  # cool nights without an alarm: the heating, not the failure response
        evidence = self.retriever.search(query, k=1, per_doc=PASSAGES, lang=lang,
                                         filters={"kind": "crop", "crop": summary.crop, "lang": lang})
        chosen = _in_sections(evidence, sections)
        if not chosen:
            return out
        extract = self.extractive.answer(query, chosen, lang=lang)
        numbers = []
        for ev in extract.citations:
            n = _cite(citations, ev)
            numbers.append(n)
        out["sentences"] = [(s, numbers[k - 1]) for s, k in extract.sentences]
        out["citations"] = sorted(set(numbers))
        out["query"] = query
        return out

    def _rewrite(self, model: Any, text: str, lang: str) -> tuple[str, str, str]:
        w = T.WORDS[lang]
        messages = [ChatMessage("system", T.REWRITE_SYSTEM[lang]), ChatMessage("user", text)]
        try:
            out, _ = collect(model.stream(messages, GenerationOptions(
                max_tokens=400, temperature=0.2, deadline_s=self.settings.model_deadline_s)))
        except Exception as exc:  # noqa: BLE001 - the template is always there to fall back on
            log.warning("advice rewrite failed: %s", exc)
            return text, "fallback", w["why_failed"].format(error=type(exc).__name__)
        want, got = set(MARKER.findall(text)), set(MARKER.findall(out))
        if not out.strip():
            return text, "fallback", w["why_empty"]
        if want != got:
            marks = lambda ns: (", " if lang == "en" else "、").join(f"[{n}]" for n in sorted(ns, key=int))  # noqa: E731
            why = [w["why_lost"].format(markers=marks(want - got))] if want - got else []
            why += [w["why_extra"].format(markers=marks(got - want))] if got - want else []
            return text, "fallback", ("; " if lang == "en" else "；").join(why)
        return out.strip(), "llm", ""


def lexical_only(retriever: Retriever) -> Retriever:
    """The same index searched by keywords alone: the search is confined to one document (the
    zone's crop guide in its language) and the queries are fixed phrases in that guide's words, so
    BM25 finds the section; the dense pass would only add an embedding call per finding."""
    s = retriever.settings
    retrieval = s.retrieval.model_copy(update={"dense_weight": 0.0, "dense_weight_zh": 0.0})
    return Retriever(s.model_copy(update={"retrieval": retrieval}), index=retriever.index,
                     embedder=retriever._embedder, reranker=None)


def _in_sections(evidence: list[Evidence], sections: tuple[str, ...]) -> list[Evidence]:
    """The retrieved chunks of the first wanted section found (best first), else the best chunk."""
    for number in sections:
        hits = [e for e in evidence if e.chunk.title_path and
                re.match(rf"{re.escape(number)}(\s|$)", e.chunk.title_path[-1])]
        if hits:
            return hits
    return evidence[:1]


def _cite(citations: list[dict], ev: Evidence) -> int:
    for c in citations:
        if c["chunk_id"] == ev.chunk.id:
            return c["n"]
    c = ev.chunk
    citations.append({"n": len(citations) + 1, "chunk_id": c.id, "doc": c.title_path[0] if c.title_path else c.source,
                      "section": c.title_path[-1] if c.title_path else "", "title": c.title, "page": c.page,
                      "source": c.source.rsplit("/", 1)[-1], "lang": c.lang})
    return len(citations)


# -- the template -----------------------------------------------------------------------------------
def _zone_words(s: DaySummary, lang: str) -> dict[str, str]:
    crop = T.CROP.get(lang, {}).get(s.crop or "", s.crop or "")
    stage = T.STAGE.get(lang, {}).get(s.stage or "", s.stage or "")
    name = s.zone_name or s.zone
    if lang == "zh":  # the profile's names are English; its aliases say what people call the zone
        name = next((a for a in s.aliases if re.search(r"[\u4e00-\u9fff]", a)), name)
    return {"zone": s.zone, "name": name, "crop": crop, "stage": stage}


def _finding_line(f: Finding, lang: str) -> str:
    w = T.WORDS[lang]
    metric = T.METRIC[lang].get(f.metric, f.metric)
    direction = w[f.direction]
    if f.minutes is None:
        line = w["finding_daily"].format(metric=metric[0].upper() + metric[1:], value=T.fmt(f.worst, f.unit),
                                         dir=direction, band=T.band(f.band, f.unit), beyond=T.fmt(f.beyond, f.unit))
    else:
        period = T.PERIOD[lang][f.period]
        line = w["finding"].format(period=period, period_l=period.lower(), metric=metric, dir=direction,
                                   band=T.band(f.band, f.unit), dur=T.duration(f.minutes, lang),
                                   worst_word=w["lowest" if f.direction == "low" else "highest"],
                                   worst=T.fmt(f.worst, f.unit), beyond=T.fmt(f.beyond, f.unit),
                                   mean=T.fmt(f.mean, f.unit))
        if f.alarm_minutes:
            line += w["alarm"].format(dur=T.duration(f.alarm_minutes, lang))
    if f.incomplete:
        line += w["incomplete"]
    return line + (" " if lang == "en" else "") + w["targets"].format(source=refs(f.source))


def refs(source: str) -> str:
    """"crop tomato / fruiting (CG-TOM-01 §2.2, §2.3, §5.5; CG-TOM-01 §2.3, §5.5)" → "CG-TOM-01 §2.2, §2.3,
    §5.5": the documents and sections behind a limit, each once (the day and night rows repeat them)."""
    m = re.search(r"\((.*)\)\s*$", source)
    if not m:
        return source
    docs: dict[str, list[str]] = {}
    for part in m[1].split(";"):
        doc, _, rest = part.strip().partition(" ")
        sections = docs.setdefault(doc, [])
        sections.extend(x.strip() for x in rest.split(",") if x.strip() and x.strip() not in sections)
    return "; ".join(f"{d} {', '.join(secs)}".strip() for d, secs in docs.items())


def _template(s: DaySummary, advice_date: Date, recs: list[dict], lang: str) -> str:
    w = T.WORDS[lang]
    zw = _zone_words(s, lang)
    lines = [w["intro"].format(date=advice_date.isoformat(), day=s.date, d0=s.day_hours[0], d1=s.day_hours[1], **zw)]
    if s.status == "no_data":
        lines.append(w["no_data"].format(zone=s.zone, day=s.date))
        return "\n".join(lines)
    if not s.findings:
        lines.append(w["in_range"].format(stage=zw["stage"], day=s.date))
    joiner = " " if lang == "en" else ""
    for i, r in enumerate(recs, 1):
        f = Finding(**{k: v for k, v in r["finding"].items() if k != "topic"})
        lines.append(f"{i}. {_finding_line(f, lang)}")
        if r["sentences"]:
            lines.append("   " + w["today"] + joiner + joiner.join(f"{t} [{n}]" for t, n in r["sentences"]))
        else:
            lines.append("   " + w["no_passage"])
    extra = []
    lines.append("")  # the day's other figures are not part of the last finding
    if s.light.get("measured") and not any(f.metric == "dli" for f in s.findings):
        extra.append(w["light"].format(dli=T.fmt(s.light["dli"]), how=s.light.get("how", "")))
    if s.drain.get("measured"):
        extra.append(w["drain_value"].format(value=T.fmt(s.drain["fraction_pct"]), sensor=s.drain["sensor"]))
    else:
        note = s.drain.get("note", w["none"])
        extra.append(w["drain"].format(note=T.DRAIN_NOTE.get(lang, {}).get(note, note)))
    lines.append(joiner.join(extra))
    lines.extend(s.notes)
    return "\n".join(lines)


def _sources(citations: list[dict], lang: str) -> str:
    if not citations:
        return ""
    rows = [T.WORDS[lang]["sources"]]
    for c in citations:
        page = f", p. {c['page']}" if c.get("page") else ""
        rows.append(f"[{c['n']}] {c['title']} ({c['source']}{page})")
    return "\n".join(rows)


def _headline(s: DaySummary, lang: str) -> str:
    w = T.WORDS[lang]
    if s.status == "no_data":
        return w["headline_none"].format(zone=s.zone, day=s.date)
    if not s.findings:
        return w["headline_ok"].format(zone=s.zone, day=s.date)
    f = s.findings[0]
    period = T.PERIOD[lang][f.period]
    period = "" if f.period == "daily" else period  # "daily light sum", not "daily daily light sum"
    first = w["first"].format(period=period, period_l=period.lower(), metric=T.METRIC[lang].get(f.metric, f.metric),
                              dirw=w["dirw"][f.direction])
    first = first.strip()
    return w["headline_off"].format(zone=s.zone, day=s.date, n=len(s.findings), first=first[0].upper() + first[1:])


# -- wiring -------------------------------------------------------------------------------------------
def advisor_for(services: Any) -> Advisor:
    """The one Advisor of a service bundle (built on first use from its parts, then kept on it), so
    the API, the page and the scheduler share one store and one lock."""
    existing = services.__dict__.get("_advisor")
    if existing is not None:
        return existing
    parts, settings = services.parts, services.settings
    loaded = parts.loaded
    advisor = Advisor(parts.site, parts.sensor_store, parts.retriever, AdviceStore(settings.advice_db),
                      getattr(settings, "advice", None) or AdviceSettings(), model=lambda: loaded.model,
                      extractive=ExtractiveModel(parts.embedder, reason="daily advice"), clock=parts.tools.clock)
    return services.__dict__.setdefault("_advisor", advisor)
