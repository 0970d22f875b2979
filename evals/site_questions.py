"""The sample site's own questions (``evals/site_questions.jsonl``), asked through the agent.

The bundled demo must answer what its own documents plainly say, in both languages and in
both modes (issue 11: "the bundled sample site's own questions are answered, not refused").
Each line of the set is one question written for onsite about ``knowledge/samples``:

    {"id", "lang": "en"|"zh", "question", "answer": the reference answer (an exact span or table
     row of the gold document), "gold": [paths relative to the samples folder; the first is the
     one the answer is copied from], "key_facts": [what a correct answer must contain; an entry
     may be a list of alternatives], "answerable": bool, "absent"?: [for an unanswerable
     question, its subject, which no document names]}

Unanswerable questions (``gold`` empty) ask about crops or machines the site does not have:
the assistant should say it does not know.

Scores, per question: answered (not abstained), citation hit (cites a gold document), key-fact
share (numbers compared after normalising "22–25" / "22-25" / "22~25" / "22 至 25", full-width
characters, thousands separators and spacing before units), token recall of the reference answer
(``evals.answers.token_recall``, extractive mode scored without its label line). A failure
carries what is needed to tell why: the answerability score, signals and reason, the tools the
agent called, the documents cited, and — from the same retriever, searched again — the rank of
the first gold passage, of the first passage that holds every key fact, and whether that passage
was in the evidence the agent searched for.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from evals.answers import token_recall
from evals.retrieval import percentile_ms

if TYPE_CHECKING:
    from assistant.llm import LoadedModel
    from assistant.settings import Settings
    from knowledge.embedding import Embedder

QUESTIONS_PATH = Path(__file__).resolve().parent / "site_questions.jsonl"
DIAGNOSIS_K = 10  # documents (and chunks of each) searched again to find where the answer ranks
AGENT_K, AGENT_PER_DOC = 5, 2  # the agent's own search (assistant/nodes.py, retrieve)

Fact = str | list[str]  # a key fact, or alternatives of which one must occur


@dataclass
class SiteQuestion:
    id: str
    lang: str
    question: str
    answer: str
    gold: list[str]
    key_facts: list[Fact] = field(default_factory=list)
    answerable: bool = True
    absent: list[str] = field(default_factory=list)  # unanswerable: its subject, named in no document


def load_site_questions(path: Path = QUESTIONS_PATH) -> list[SiteQuestion]:
    with open(path, encoding="utf-8") as fh:
        return [SiteQuestion(**json.loads(line)) for line in fh if line.strip()]


# ---------------------------------------------------------------- key facts

_DASHES = re.compile(r"[\u2010-\u2015\u2212~\uff5e\u301c]")  # hyphens, en/em dashes, minus, tildes
_RANGE_WORD = re.compile(r"(\d\s*(?:%|°c)?)\s*(?:至|到|\b(?:up )?to\b)\s*(?=[+\-]?\d)")  # "20% to 30%" -> "20%-30%"
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_UNIT_BEFORE_DASH = re.compile(r"(\d)\s*(?:%|°c)\s*-\s*(?=[+\-]?\d)")  # "19.5 %–23.5 %" -> "19.5-23.5 %"
_SPACE = re.compile(r"\s+")
_DIGIT_SPACE = re.compile(r"(?<=\d)\s+(?=\d)")  # "O2 19.5" must not become "O219.5"
# After normalising: a range with one unit, "4.5-7.1mm/s", also states its lower bound "4.5mm/s".
_UNIT_RANGE = re.compile(r"(?<![\d.])([+\-]?\d+(?:\.\d+)?)-([+\-]?\d+(?:\.\d+)?)([a-zµ°%][a-z0-9µ°%/()]*)")


def normalise(text: str) -> str:
    """Text as key facts are compared: NFKC (full-width digits, ℃, m³), lower case, every dash or
    tilde a hyphen, range words (至, 到, to, up to) between numbers a hyphen, no thousands separators, a
    unit repeated inside a range dropped, no whitespace (one space kept between two digits)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _DASHES.sub("-", t)
    t = _THOUSANDS.sub("", t)
    t = _RANGE_WORD.sub(r"\1-", t)
    t = _UNIT_BEFORE_DASH.sub(r"\1-", t)
    t = _DIGIT_SPACE.sub("\x00", t)
    return _SPACE.sub("", t).replace("\x00", " ")


def _fact_pattern(fact: str) -> re.Pattern[str] | None:
    f = normalise(fact)
    if not f:
        return None
    head = r"(?<![\d.])" if f[0].isdigit() else ""  # "8 g" is not found in "18 g"
    tail = r"(?!\d)" if f[-1].isdigit() else ""  # "5.5" is not found in "5.55"
    return re.compile(head + re.escape(f) + tail)


def has_fact(fact: Fact, text: str) -> bool:
    """Whether ``text`` states the fact (any of its alternatives); "4.5 mm/s" is also found as the
    lower bound of "4.5–7.1 mm/s"."""
    target = normalise(text)
    targets = (target, _UNIT_RANGE.sub(r"\1\3-\2\3", target))
    for alt in [fact] if isinstance(fact, str) else fact:
        pattern = _fact_pattern(alt)
        if pattern is not None and any(pattern.search(t) for t in targets):
            return True
    return False


def missing_facts(facts: Iterable[Fact], text: str) -> list[Fact]:
    return [f for f in facts if not has_fact(f, text)]


def key_fact_share(facts: list[Fact], text: str) -> float:
    if not facts:
        return 1.0
    return (len(facts) - len(missing_facts(facts, text))) / len(facts)


def select(questions: list[SiteQuestion], limit: int | None) -> list[SiteQuestion]:
    """The first ``limit`` questions taken in turn from each group (gold document, or none), so a
    small sample still spreads over the documents, both languages and the unanswerable ones."""
    if limit is None or limit >= len(questions):
        return list(questions)
    groups: dict[str, list[SiteQuestion]] = {}
    for q in questions:
        groups.setdefault(q.gold[0] if q.gold else "", []).append(q)
    picked: list[SiteQuestion] = []
    while len(picked) < limit:
        for group in groups.values():
            if group and len(picked) < limit:
                picked.append(group.pop(0))
    return picked


# ---------------------------------------------------------------- the run


def evaluate_site_questions(settings: "Settings", loaded: "LoadedModel | None" = None, limit: int | None = None,
                            *, embedder: "Embedder | None" = None, questions: list[SiteQuestion] | None = None,
                            progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Build the sample index in a throw-away data home and ask every question through the agent
    (``build_services(...).turns.answer``, as ``evals.answers.agent_asker``); ``loaded`` None =
    extractive mode."""
    from assistant.llm import LoadedModel
    from assistant.llm.extractive import ExtractiveModel
    from assistant.wiring import build_services
    from evals.model_choice import model_label
    from knowledge.builder import build_index
    from knowledge.embedding import make_embedder
    from knowledge.retrieval import Retriever

    asked = select(questions if questions is not None else load_site_questions(), limit)
    embedder = embedder or make_embedder(settings.embedding, settings.home)
    model = loaded or LoadedModel(ExtractiveModel(embedder, reason="evaluation of extractive mode"),
                                  "extractive", "extractive", "evaluation of extractive mode")
    samples = settings.samples_dir.resolve()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="onsite-eval-site-") as tmp:
        run_settings = settings.model_copy(update={"home": Path(tmp) / "home"})
        t0 = time.perf_counter()
        build_index([samples], run_settings, embedder=embedder)
        index_seconds = time.perf_counter() - t0
        retriever = Retriever(run_settings, embedder=embedder)
        retriever.search("warm up", k=1)  # index and embedder loaded outside any timing
        services = build_services(run_settings, loaded=model, embedder=embedder, retriever=retriever)
        try:
            for i, q in enumerate(asked):
                if progress:
                    progress(i, len(asked), q.id)
                runs.append(_ask(services.turns, retriever, q, samples))
        finally:
            services.close()
    result = {
        "questions": len(runs),
        "mode": model.mode,
        "model": model_label(settings, model),
        "model_reason": model.reason,
        "index_seconds": round(index_seconds, 2),
        **_summary(runs),
        "by_lang": {lang: _summary([r for r in runs if r["lang"] == lang])
                    for lang in sorted({r["lang"] for r in runs})},
        "failures": [_failure(r) for r in runs if r["problems"]],
    }
    return result


def _rel(source: str | None, samples: Path) -> str:
    if not source:
        return ""
    path = Path(source)
    try:
        return path.resolve().relative_to(samples).as_posix()
    except ValueError:
        return path.as_posix()


def _ask(turns: Any, retriever: Any, q: SiteQuestion, samples: Path) -> dict[str, Any]:
    from assistant.numbered_sources import call_label

    t = time.perf_counter()
    error = None
    try:
        answer = turns.answer(q.question, user="evaluation")
    except Exception as exc:  # noqa: BLE001 - one failed turn is a failure of that question, not of the run
        answer, error = None, f"{type(exc).__name__}: {exc}"
    ms = (time.perf_counter() - t) * 1000
    if answer is None:
        status, mode, text, scored, cited, doc_sources, answerability, searched = \
            "error", "", "", "", [], [], {}, q.question
    else:
        status, mode, text = answer.status, answer.mode, answer.text
        # The extract's first line is its label ("Extract from the documents …"): not part of the answer.
        scored = text.split("\n", 1)[1] if mode == "extractive" and "\n" in text else text
        scored = "" if status == "abstained" else scored
        doc_sources = [s for s in answer.sources if s.get("kind") == "document"]
        cited = sorted({_rel(s.get("source"), samples) for s in doc_sources if s["n"] in answer.cited})
        answerability, searched = answer.answerability, answer.searched or q.question
    gold = set(q.gold)
    run: dict[str, Any] = {
        "id": q.id, "lang": q.lang, "question": q.question, "answerable": q.answerable, "status": status,
        "answer_mode": mode, "text": text, "ms": ms, "error": error, "cited": cited,
        "answered": status in ("answered", "partial"),
        "citation_hit": bool(gold & set(cited)),
        "key_facts_missing": missing_facts(q.key_facts, scored) if q.answerable else [],
        "key_fact_share": key_fact_share(q.key_facts, scored) if q.answerable else None,
        "token_recall": token_recall(q.answer, scored) if q.answerable else None,
        "answerability": {k: answerability.get(k) for k in ("score", "reason", "signals") if k in answerability},
        "tools": [] if answer is None else [call_label(r) for r in answer.tool_results],
        "gold_rank_in_sources": next((i + 1 for i, s in enumerate(doc_sources)
                                      if _rel(s.get("source"), samples) in gold), None),
    }
    problems = []
    if error:
        problems.append("error")
    if q.answerable:
        if not run["answered"]:
            problems.append("abstained")
        else:
            if not run["citation_hit"]:
                problems.append("no gold citation")
            if run["key_facts_missing"]:
                problems.append("key facts missing")
    elif run["answered"]:
        problems.append("answered an unanswerable question")
    run["problems"] = problems
    if problems and q.answerable:
        run["retrieval"] = _diagnose(retriever, searched, q, samples)
    return run


def _diagnose(retriever: Any, query: str, q: SiteQuestion, samples: Path) -> dict[str, Any]:
    """Where the answer sits in a fresh, deep search for the same query (every chunk of up to
    ``DIAGNOSIS_K`` documents, best first): the first gold chunk, the first gold chunk holding every
    key fact, and whether that chunk is in the evidence the agent searches for (k=5 documents, two
    chunks each, as ``assistant.nodes.retrieve`` asks for)."""
    deep = retriever.search(query, k=DIAGNOSIS_K, per_doc=DIAGNOSIS_K)
    agent_view = {e.chunk.id for e in retriever.search(query, k=AGENT_K, per_doc=AGENT_PER_DOC)}
    gold = set(q.gold)
    gold_rank = answer = None
    for i, e in enumerate(deep, 1):
        if _rel(e.chunk.source, samples) not in gold:
            continue
        gold_rank = gold_rank or i
        if answer is None and not missing_facts(q.key_facts, e.chunk.text):
            answer = (i, e)
    return {
        "query": query, "chunks": len(deep), "gold_rank": gold_rank,
        "answer_chunk_rank": answer[0] if answer else None,
        "answer_chunk_title": answer[1].chunk.title if answer else None,
        "answer_chunk_in_evidence": bool(answer and answer[1].chunk.id in agent_view),
        "top": [f"{_rel(e.chunk.source, samples)} > {e.chunk.title_path[-1] if e.chunk.title_path else ''}"
                for e in deep[:3]],
    }


def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ans = [r for r in runs if r["answerable"]]
    una = [r for r in runs if not r["answerable"]]
    answered = _rate([r["answered"] for r in ans])
    latencies = [r["ms"] for r in runs]
    return {
        "answerable": len(ans),
        "unanswerable": len(una),
        "answered_rate": answered,
        "wrong_abstention_rate": None if answered is None else round(1 - answered, 4),
        "abstention_rate_unanswerable": _rate([not r["answered"] for r in una]),
        "citation_hit_rate": _rate([r["citation_hit"] for r in ans]),
        "key_fact_rate": _mean([r["key_fact_share"] for r in ans]),
        "answer_token_recall": _mean([r["token_recall"] for r in ans]),
        "all_key_facts_rate": _rate([not r["key_facts_missing"] and r["answered"] for r in ans]),
        "statuses": dict(Counter(r["status"] for r in runs)),
        "answer_modes": dict(Counter(r["answer_mode"] for r in runs if r["answer_mode"])),
        "latency_ms": {"p50": percentile_ms(latencies, 50), "p95": percentile_ms(latencies, 95)},
    }


def _failure(run: dict[str, Any]) -> dict[str, Any]:
    out = {k: run[k] for k in ("id", "question", "status", "problems")}
    out["answer"] = run["text"][:300]
    out["cited"] = run["cited"]
    out["answerability"] = run["answerability"]
    out["tools"] = run["tools"]
    if run["answerable"]:
        out["key_facts_missing"] = run["key_facts_missing"]
        out["gold_rank_in_sources"] = run["gold_rank_in_sources"]
        out["retrieval"] = run.get("retrieval")
    if run["error"]:
        out["error"] = run["error"]
    return out
