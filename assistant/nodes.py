"""The steps of one turn, as plain functions of ``(state, deps)``.

    contextualize → route → act → retrieve → answer → verify ─┬─► propose → finish
                                               ▲               ├─ regenerate (once) ─┘
                                               └───────────────┘└─ fallback (extract) ─► propose

- contextualize: a follow-up is made standalone from the conversation;
- route: one JSON-schema-constrained decision of the model (or the rule router when no model is
  loaded): tool calls + search words, validated before anything runs. Documents are never shown
  to the router, so their text cannot choose tools;
- act: read-only tools run in parallel; tools with side effects are only queued;
- retrieve: hybrid search within the scope, then answerability of the evidence (where the score
  is unsure and a model is loaded, the model judges, on the answer's own prompt prefix);
- answer: streamed, citing [n]; or the labelled extract; or the fixed abstention;
- verify: deterministic checks (assistant/grounding.py); one regeneration with the failures
  stated, then the extract;
- propose: each queued side effect waits for a person (``deps.interrupt``); nothing is written
  before approval, and then the tool's own ``apply`` writes it;
- finish: the status and the conversation's new message.

Each step returns the part of the state it changes. State is plain JSON-like data, so the
checkpointer stores it with strict msgpack. The graph (``assistant/graph.py``) strings the steps
together and gives them ``deps.emit`` (stream events) and ``deps.interrupt`` (pause for a
person); a test can call any step alone with its own.
"""

from __future__ import annotations

import operator
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, TypedDict

from pydantic import BaseModel, Field

from assistant import conflicts, grounding, photo_notes, prompts
from assistant.llm.base import (CancelledError, ChatMessage, ChatModel, DeadlineExceededError, GenerationOptions,
                                InvalidDecisionError, ModelBusyError, ModelError)
from assistant.llm.extractive import ExtractiveModel
from assistant.conversation import borrowed_question, follow_up_question, merge_sources, next_context
from assistant.numbered_sources import abstention, build_sources, extract_answer, render_for_prompt
from assistant.reattribution import reattribute
from assistant.routing import (RoutePlan, ToolCall, add_photo_calls, constrain_model_plan, deterministic_plan, named_in,
                               rules_undecided, validate_plan)
from assistant.types import Answer, Check, Source
from knowledge.retrieval import Retriever
from knowledge.text import detect_lang
from tools.base import ToolRegistry, ToolResult
from tools.site import SiteProfile

VERIFIED = ("content", "citations", "numbers", "safety", "status", "support")  # the checks a regeneration answers


class Standalone(BaseModel):
    question: str = Field(..., min_length=1, max_length=600)


class TurnState(TypedDict, total=False):
    messages: Annotated[list[dict], operator.add]  # the conversation: {"role", "content"}
    question: str
    standalone: str
    lang: str
    scope: dict
    photos: list[str]
    user: str
    thread_id: str
    filters: dict  # extra retrieval filters (evaluations exclude gold documents with them)
    deadline_at: float  # epoch seconds
    max_tokens: int  # tokens the answer may have (the caller's cap within the agent's limit)
    plan: dict  # {"calls", "rejected", "search", "router"}
    tool_results: list[dict]
    pending: list[dict]  # side-effect calls waiting for a person
    evidence: list[dict]
    answerability: dict
    sources: list[dict]
    label: str  # the extract's label line, when the answer is an extract
    draft: str
    answer: str  # the text the person reads: label line (if any) and draft
    attempts: int
    checks: list[dict]
    status: str
    mode: str
    mode_reason: str | None
    timings: dict
    # Carried across turns (new_turn leaves it alone): what the model already read of this
    # conversation — {"exchange": [messages], "sources": [source dicts], "question": standalone}.
    context: dict
    borrowed: str  # the earlier question a short follow-up is searched with ("Why is that?")
    prompt: str  # this turn's first answer prompt as sent (kept in ``context`` for the next turn)
    generated: str  # the model's first draft as generated (what its KV cache holds)


def _no_emit(kind: str, **data: Any) -> None:
    return None


def _no_interrupt(request: dict) -> dict:
    raise RuntimeError("this step needs a person's decision, and no way to ask was given")


@dataclass
class AgentDeps:
    """What the steps use besides the state. ``assess(question, evidence)`` judges answerability;
    ``emit`` and ``interrupt`` are given by the graph."""

    settings: Any  # assistant.settings.Settings: the agent and llm sections are read
    model: ChatModel  # the loaded language model, or the ExtractiveModel
    extractive: ExtractiveModel
    retriever: Retriever
    registry: ToolRegistry  # every tool the router may name
    site: SiteProfile
    assess: Callable[[str, list], Any]
    products: Callable[[], list[str]] = list
    mode_reason: str | None = None
    emit: Callable[..., None] = _no_emit
    interrupt: Callable[[dict], Any] = _no_interrupt
    cancels: dict[str, threading.Event] = field(default_factory=dict)

    system: ChatMessage = field(default_factory=lambda: ChatMessage("system", prompts.SYSTEM.render()))

    @property
    def has_model(self) -> bool:
        return self.model.mode == "llm"


def remaining(state: TurnState) -> float:
    left = state.get("deadline_at", time.time() + 600) - time.time()
    if left <= 0:
        raise DeadlineExceededError("the turn ran past its deadline")
    return left


def turn_options(state: TurnState, deps: AgentDeps, **kw: Any) -> GenerationOptions:
    """The options of every model call of a turn: the turn's deadline and its cancel event (a
    client that went away stops the call between tokens and inside a prompt batch). A turn
    already cancelled makes no call at all."""
    cancel = deps.cancels.get(state.get("thread_id", ""))
    if cancel is not None and cancel.is_set():
        raise CancelledError("the client went away; the turn was stopped")
    return GenerationOptions(deadline_s=remaining(state), cancel=cancel, **kw)


def _history(state: TurnState, turns: int) -> list[dict]:
    """Earlier turns, without the current question (the last message)."""
    msgs = state.get("messages") or []
    return msgs[:-1][-2 * turns:] if turns else []


def _shown(label: str, draft: str) -> str:
    return f"{label}\n{draft}" if label else draft


def contextualize(state: TurnState, deps: AgentDeps) -> dict:
    question = state["question"]
    history = _history(state, deps.settings.agent.history_turns)
    standalone, borrowed = question, ""
    if history and deps.has_model and deps.settings.agent.rewrite_follow_ups:
        convo = "\n".join(f"{m['role']}: {m['content'][:400]}" for m in history)
        try:
            standalone = deps.model.decide(
                [deps.system, ChatMessage("user", prompts.STANDALONE.render(history=convo, question=question))],
                Standalone, turn_options(state, deps, max_tokens=160)).question
        except (InvalidDecisionError, DeadlineExceededError):
            standalone = question
    elif history:
        # Rules, not a model call: a rewrite costs seconds and evicts the conversation from the
        # model's KV cache, which the answer would then have to read again.
        earlier = [m["content"] for m in history if m["role"] == "user"]
        standalone = follow_up_question(question, earlier, deps.site)
        previous = (state.get("context") or {}).get("question") or (earlier[-1] if earlier else "")
        borrowed = borrowed_question(question, standalone, previous)
    if standalone != question:
        deps.emit("status", stage="contextualize", standalone=standalone)
    return {"standalone": standalone, "borrowed": borrowed}


def route(state: TurnState, deps: AgentDeps, decision_schema: type[BaseModel]) -> dict:
    deps.emit("status", stage="route")
    s = deps.settings.agent
    question = state.get("standalone") or state["question"]
    scope = state.get("scope") or {}
    photos = state.get("photos") or []
    products = deps.products()  # lists the product folder: once per turn
    rules = deterministic_plan(question, deps.site, photos=photos, products=products,
                               scope_zone=scope.get("zone"), scope_asset=scope.get("asset"), lang=state["lang"])
    plan, router, note = rules, "rules", None
    if deps.has_model and rules_undecided(question, rules, photos):
        try:
            decided = deps.model.decide(
                [deps.system, ChatMessage("user", route_prompt(deps, question, photos))], decision_schema,
                turn_options(state, deps, max_tokens=300))
            plan = constrain_model_plan(RoutePlan.model_validate(decided.model_dump(mode="json")), question, deps.site)
            plan = add_photo_calls(plan, photos, products, question)
            plan.search = rules.search  # the model's search words were placeholders or echoes
            router = "model"
        except (InvalidDecisionError, DeadlineExceededError) as exc:
            note = f"the model's routing decision failed ({exc}); the rule-based router was used"
    checked = validate_plan(plan, deps.registry, deps.site, photos, s.max_tool_calls, products)
    checks = list(state.get("checks") or [])
    if note:
        checks.append(Check("route", False, note).to_dict())
    if checked.rejected:
        checks.append(Check("route", False, "rejected: " + "; ".join(
            f"{r['tool']}: {r['reason']}" for r in checked.rejected)).to_dict())
    search = " ".join(x for x in (state.get("borrowed"), checked.search or question) if x)
    return {"plan": {"calls": [c.model_dump() for c in checked.calls], "rejected": checked.rejected,
                     "search": search, "router": router}, "checks": checks}


def act(state: TurnState, deps: AgentDeps) -> dict:
    calls = [ToolCall.model_validate(c) for c in state["plan"]["calls"]]
    read_only = [c for c in calls if not deps.registry.get(c.tool).side_effects]
    pending = [c.model_dump() for c in calls if deps.registry.get(c.tool).side_effects]
    for c in read_only:
        deps.emit("tool", phase="started", tool=c.tool, args=c.args)
    results: list[dict] = []
    if read_only:
        remaining(state)
        with ThreadPoolExecutor(max_workers=min(4, len(read_only))) as pool:
            for r in pool.map(lambda c: deps.registry.call(c.tool, c.args), read_only):
                results.append(r.to_dict())
                deps.emit("tool", phase="finished", **r.to_dict())
    return {"tool_results": results, "pending": pending}


def retrieve(state: TurnState, deps: AgentDeps) -> dict:
    deps.emit("status", stage="retrieve")
    question = " ".join(x for x in (state.get("borrowed"), state.get("standalone") or state["question"]) if x)
    filters = {**scope_filters(state.get("scope") or {}), **(state.get("filters") or {})}
    # Up to 3 chunks of each document: e5 ranks a table's notes and a section's prose above the
    # table row that answers ("番茄苗期白天温度" → the 育苗期 row came third in its document).
    evidence = deps.retriever.search(state["plan"]["search"], k=5, per_doc=3, filters=filters or None,
                                     lang=state["lang"])
    judged = deps.assess(question, evidence)
    kept = [e.to_dict() for e in evidence][: deps.settings.agent.passages]
    verdict = {"answerable": bool(judged.answerable), "score": float(judged.score), "reason": judged.reason,
               "signals": dict(judged.signals)}
    if _worth_judging(state, deps, verdict):
        verdict = judge(state, deps, build_sources(kept, state.get("tool_results") or []), verdict)
    return {"evidence": kept, "answerability": verdict}


class Verdict(BaseModel):
    answerable: bool


def _worth_judging(state: TurnState, deps: AgentDeps, verdict: dict) -> bool:
    """The model is asked only where the score is unsure (inside ``agent.judge_band``) and no
    live data is shown anyway (with tool results the answer never abstains)."""
    low, high = deps.settings.agent.judge_band
    return (deps.has_model and deps.settings.agent.abstain and low <= verdict["score"] < high
            and not any(r.get("ok") for r in state.get("tool_results") or []))


def judge(state: TurnState, deps: AgentDeps, sources: list[Source], verdict: dict) -> dict:
    """Whether the sources answer the question, decided by the model. Its prompt is the answer's
    prompt up to the last line, so the tokens it reads are the ones the answer needs anyway
    (reused from the KV cache): the judgement costs a few decoded tokens, not a second prefill."""
    deps.emit("status", stage="judge")
    messages = evidence_messages(state, deps, sources, prompts.JUDGE, {})
    try:
        said = deps.model.decide(messages, Verdict, turn_options(state, deps, max_tokens=12))
    except (InvalidDecisionError, DeadlineExceededError):
        return verdict  # the score stands
    reason = ("the model found the answer in the sources" if said.answerable
              else "the model found no answer in the sources")
    return {**verdict, "answerable": bool(said.answerable), "reason": f"{reason} (score {verdict['score']:.2f}, unsure)",
            "judge": "model"}


def evidence_messages(state: TurnState, deps: AgentDeps, sources: list[Source], last: prompts.Prompt,
                      values: dict, prior: int = 0) -> list[ChatMessage]:
    """System prompt, what the model already read of this conversation, then the sources it has
    not seen and the question, then ``last``'s line. ``prior``: sources [1]…[prior] were shown in
    earlier turns (they stay citable and are not repeated)."""
    s = deps.settings.agent
    shown = render_for_prompt([x for x in sources if x.n > prior], s.evidence_tokens, state["plan"]["search"],
                              s.prompt_documents)
    if prior:
        shown = f"{shown}\n{prompts.EARLIER_SOURCES.render(last=prior)}".strip()
    block = prompts.EVIDENCE.render(sources=shown, question=state["question"])
    exchange = (state.get("context") or {}).get("exchange") or [] if prior else []
    earlier = exchange or _history(state, s.history_turns)
    return [deps.system, *[ChatMessage(m["role"], m["content"]) for m in earlier],
            ChatMessage("user", last.render(evidence=block, **values))]


def answer(state: TurnState, deps: AgentDeps) -> dict:
    s = deps.settings.agent
    lang = state["lang"]
    # A failed tool is still something to tell the person (partial), not a reason to abstain.
    tools_ran = state.get("tool_results") or []
    judged = state.get("answerability") or {}
    # Weak evidence is still shown next to live tool data (the model or extract picks from it);
    # on its own it is not enough to answer.
    answerable = bool(judged.get("answerable")) or not s.abstain
    evidence = (state.get("evidence") or []) if (answerable or any(r.get("ok") for r in tools_ran)) else []
    # A passage that relaxes a site safety rule brings that rule along (knowledge/safety.py).
    evidence = conflicts.with_rules(evidence, lambda cid: deps.retriever.index.version().store.chunk_by_id(cid))
    sources = build_sources(evidence, tools_ran)
    context = state.get("context") or {}
    prior = 0
    if deps.has_model and context.get("exchange") and s.history_turns and (evidence or tools_ran):
        # a follow-up: the model continues what it has read; earlier sources keep their numbers
        earlier = [Source.from_dict(x) for x in context.get("sources") or []]
        sources, _ = merge_sources(earlier, sources)
        prior = len(earlier)
    attempts = state.get("attempts", 0) + 1
    shown = [x.to_dict() for x in sources]
    if attempts == 1:
        deps.emit("sources", sources=shown)
    checks = list(state.get("checks") or [])
    if not evidence and not tools_ran:
        searched = build_sources(state.get("evidence") or [], [])
        text = abstention(lang, state["plan"]["search"], state.get("scope") or {}, searched)
        text += "".join(f"\n{r['tool']}: {r['reason']}" for r in state["plan"].get("rejected") or []
                        if r["tool"] != photo_notes.TOOL)  # said in finish, in the question's language
        checks.append(Check("answerability", False, judged.get("reason") or "no evidence found").to_dict())
        deps.emit("token", text=text)
        return {"sources": shown, "draft": text, "label": "", "answer": text, "status": "abstained",
                "mode": "llm" if deps.has_model else "extractive", "attempts": attempts, "checks": checks}
    if not deps.has_model:
        # The search words include the zone's crop and stage: they pick the right table row.
        label, body = extract_answer(deps.extractive, state["plan"]["search"], sources, lang)
        body = _with_rule_note(body, sources, lang)
        deps.emit("token", text=_shown(label, body))
        return {"sources": shown, "draft": body, "label": label, "answer": _shown(label, body),
                "status": "answered", "mode": "extractive",
                "mode_reason": getattr(deps.model, "reason", None) or deps.mode_reason,
                "attempts": attempts, "checks": checks}
    messages = evidence_messages(state, deps, conflicts.for_prompt(sources), prompts.ANSWER,
                                 {"language": prompts.language_name(lang)}, prior)
    prompt = messages[-1].content
    if attempts > 1:
        failed = grounding.describe_failures([Check(**c) for c in checks if c["name"] in VERIFIED])
        messages += [ChatMessage("assistant", state.get("draft", "")),
                     ChatMessage("user", prompts.REGENERATE.render(failures=failed))]
    parts: list[str] = []
    rule_note = conflicts.note(sources, lang)  # the stricter rule first, whatever the model writes
    if rule_note:
        deps.emit("token", text=rule_note + "\n")
    try:
        # inside the try: a turn whose deadline passed while it queued still answers, with the extract
        options = turn_options(state, deps, max_tokens=state.get("max_tokens") or s.answer_max_tokens,
                               temperature=deps.settings.llm.temperature)
        for ev in deps.model.stream(messages, options):
            if ev.kind == "token":
                parts.append(ev.text)
                deps.emit("token", text=ev.text)
    except (ModelBusyError, CancelledError):  # a cancelled turn stops; it does not fall back
        raise
    except ModelError as exc:  # deadline, crash: the extract still answers, labelled with why
        reason = prompts.FALLBACK_REASON["model"].format(error=getattr(exc, "user_message", str(exc)))
        return _extract_instead(state, deps, sources, reason, attempts, checks)
    generated = "".join(parts).strip()
    draft = f"{rule_note}\n{generated}" if rule_note else generated
    return {"sources": shown, "draft": draft, "label": "", "answer": draft, "status": "answered", "mode": "llm",
            "attempts": attempts, "checks": checks, "prompt": prompt if attempts == 1 else state.get("prompt", prompt),
            "generated": generated if attempts == 1 else state.get("generated", generated)}


def _with_rule_note(body: str, sources: list[Source], lang: str) -> str:
    """The contradicted safety rule, cited, and who disagrees, before the extract."""
    rule_note = conflicts.note(sources, lang)
    return f"{rule_note}\n{body}".strip() if rule_note else body


def _extract_instead(state: TurnState, deps: AgentDeps, sources: list[Source], reason: str, attempts: int,
                     checks: list[dict]) -> dict:
    extractive = ExtractiveModel(deps.extractive.embedder, reason=reason)
    reason = extractive.reason  # without the server's folders, as in the label
    label, body = extract_answer(extractive, state["plan"]["search"], sources, state["lang"])
    body = _with_rule_note(body, sources, state["lang"])
    deps.emit("check", name="fallback", ok=False, detail=reason, retry=True)
    deps.emit("token", text=_shown(label, body))
    return {"sources": [x.to_dict() for x in sources], "draft": body, "label": label, "answer": _shown(label, body),
            "status": "answered", "mode": "extractive", "mode_reason": reason, "attempts": attempts,
            "checks": [*checks, Check("fallback", False, reason).to_dict()]}


def verify(state: TurnState, deps: AgentDeps) -> dict:
    checks = [c for c in state.get("checks") or [] if c["name"] not in VERIFIED]
    if state.get("status") == "abstained":
        return {"checks": checks}
    sources = [Source.from_dict(x) for x in state["sources"]]
    draft, update = state["draft"], {}
    if state.get("mode") == "llm":  # a right fact behind a wrong [n] is re-cited, not regenerated
        draft, notes = reattribute(draft, sources)
        if notes:
            note = Check("reattributed", True, "; ".join(notes[:5]))
            deps.emit("check", **note.to_dict(), retry=False)
            checks.append(note.to_dict())
            update = {"draft": draft, "answer": _shown(state.get("label", ""), draft)}
    results = grounding.verify(draft, sources)
    retry = bool(grounding.failures(results)) and state.get("mode") == "llm"
    for c in results:
        deps.emit("check", **c.to_dict(), retry=retry and not c.ok)
    return {**update, "checks": checks + [c.to_dict() for c in results]}


def after_verify(state: TurnState) -> str:
    """The next step: "propose" when the checks passed (or the answer needs none), else one
    regeneration ("answer"), else the extract ("fallback")."""
    failed = [c for c in state.get("checks") or [] if c["name"] in VERIFIED and not c["ok"]]
    if not failed or state.get("mode") != "llm":
        return "propose"
    return "answer" if state.get("attempts", 1) < 2 else "fallback"


def fallback(state: TurnState, deps: AgentDeps) -> dict:
    sources = [Source.from_dict(x) for x in state["sources"]]
    return _extract_instead(state, deps, sources, prompts.FALLBACK_REASON["checks"], state.get("attempts", 2),
                            list(state.get("checks") or []))


def propose(state: TurnState, deps: AgentDeps) -> dict:
    results = list(state.get("tool_results") or [])
    for call in state.get("pending") or []:
        args = {**call["args"], "evidence": call["args"].get("evidence") or evidence_lines(state)}
        # The person sees exactly what will be written; nothing is written before they decide.
        decision = deps.interrupt({"kind": "approval", "tool": call["tool"], "args": args,
                                   "question": state["question"]})
        decision = decision if isinstance(decision, dict) else {}
        by = str(decision.get("by") or "unknown")[:80]
        reason = str(decision.get("reason") or "")[:300]
        if decision.get("approved"):
            result = deps.registry.apply(call["tool"], args, by).to_dict()
        else:
            result = ToolResult(call["tool"], args, False, summary=f"not approved by {by}: {reason or 'no reason given'}",
                                error="not approved").to_dict()
        result["approval"] = {"approved": bool(decision.get("approved")), "by": by, "reason": reason}
        results.append(result)
        deps.emit("tool", phase="finished", **result)
    return {"tool_results": results, "pending": []}


def finish(state: TurnState, deps: AgentDeps) -> dict:
    failed_tools = [r for r in state.get("tool_results") or [] if not r.get("ok") and "approval" not in r]
    status = state.get("status") or "answered"
    if status == "answered" and (failed_tools or state["plan"].get("rejected")):
        status = "partial"
    text = state.get("answer", "")
    # A call the checks refused ("the site has no zone 温室3号 …") is told, whatever answered.
    refused = [r for r in state["plan"].get("rejected") or []
               if r["reason"] not in text and r["reason"] != "duplicate call" and r["tool"] != photo_notes.TOOL]
    if refused and status != "abstained":
        note = "".join(f"\n{r['tool']}: {r['reason']}" for r in refused)
        deps.emit("token", text=note)
        text += note
    # An attached photo that was not checked is said, and why, in the question's language.
    photo = "".join(f"\n{photo_notes.not_checked(state['lang'], reason)}" for reason in photo_notes.photo_failures(
        state["plan"].get("rejected") or [], state.get("tool_results") or []))
    if photo:
        deps.emit("token", text=photo)
        text += photo
    update: dict = {"status": status, "answer": text, "messages": [{"role": "assistant", "content": text}]}
    # What the model read and wrote stays in its KV cache: the next turn continues from it. A turn
    # the model did not answer (extract, abstention) starts the next one afresh.
    if state.get("mode") == "llm" and status != "abstained" and state.get("prompt"):
        update["context"] = next_context(state.get("context") or {}, state["prompt"], state.get("generated", ""),
                                         state.get("sources") or [],
                                         " ".join(x for x in (state.get("borrowed"), state.get("standalone") or state["question"]) if x),
                                         deps.settings.agent.context_tokens)
    else:
        update["context"] = {}
    return update


def route_prompt(deps: AgentDeps, question: str, photos: list[str]) -> str:
    site = deps.site
    tools = []
    for d in deps.registry.schemas():
        first = d["description"].split(". ")[0]
        args = ", ".join(d["parameters"].get("properties", {}))
        tools.append(f"- {d['name']}({args}): {first}{' (needs approval)' if d['side_effects'] else ''}")
    return prompts.ROUTE.render(
        max_calls=deps.settings.agent.max_tool_calls,
        zones=", ".join(f"{z.id} ({'/'.join(z.aliases[:1]) or z.name})" for z in site.zones),
        assets=", ".join(a.id for a in site.assets), sensors=", ".join(x.id for x in site.sensors),
        photos=", ".join(photos) or "none", tools="\n".join(tools), question=question)


def scope_filters(scope: dict) -> dict:
    """Documents about another asset or crop are out of scope; general ones stay."""
    out = {}
    if scope.get("asset"):
        out["asset"] = [scope["asset"], "None"]
    if scope.get("crop"):
        out["crop"] = [scope["crop"], "None"]
    return out


def evidence_lines(state: TurnState) -> list[str]:
    """What supports a work order: the tool readings and the passages the answer cites."""
    cited = set(grounding.cited(state.get("draft", "")))
    lines = [f"{r['tool']}: {r.get('summary', '')}"[:500] for r in state.get("tool_results") or [] if r.get("ok")]
    lines += [f"[{x['n']}] {x['title']} ({(x.get('source') or '').rsplit('/', 1)[-1]})"[:500]
              for x in state.get("sources") or [] if x["n"] in cited and x["kind"] == "document"]
    return lines[:10]


def new_turn(question: str, *, thread_id: str, scope: dict, photos: list[str], user: str, deadline_s: float,
             max_tokens: int, filters: dict | None = None) -> TurnState:
    """The input of one turn: every per-turn field is reset (the checkpoint keeps the last turn's)."""
    return TurnState(
        messages=[{"role": "user", "content": question}], question=question, standalone=question,
        lang=detect_lang(question), scope=scope, photos=photos, user=user, thread_id=thread_id, filters=filters or {},
        deadline_at=time.time() + deadline_s, max_tokens=max_tokens, plan={}, tool_results=[], pending=[],
        evidence=[], answerability={}, sources=[], label="", draft="", answer="", attempts=0, checks=[], status="",
        mode="", mode_reason=None, timings={}, prompt="", generated="", borrowed="",
    )


def answer_of(values: dict, pending: list[dict], thread_id: str, default_mode: str) -> Answer:
    """The Answer a turn's state holds (also while it waits for a person's decision)."""
    return Answer(
        text=values.get("answer", ""), status=values.get("status") or "answered",
        mode=values.get("mode") or default_mode, lang=values.get("lang", "en"), sources=values.get("sources") or [],
        cited=grounding.cited(values.get("draft", "")), tool_results=values.get("tool_results") or [],
        checks=values.get("checks") or [], pending=pending, thread_id=thread_id,
        searched=(values.get("plan") or {}).get("search", ""), mode_reason=values.get("mode_reason"),
        answerability=values.get("answerability") or {}, timings=values.get("timings") or {},
    )
