"""What a conversation carries from one turn to the next, so that a follow-up costs only its
own new tokens.

The model sees a follow-up as the continuation of the exchange it already read: the previous
answer prompt and answer, byte for byte (their tokens are still in the runtime's KV cache), then
only the sources that are new, numbered after the ones it has seen — earlier sources keep their
numbers and stay citable. Without this, every follow-up re-reads the whole conversation and its
evidence (several seconds of prefill on 2 cores).

A follow-up is made standalone by rules: it inherits the zone, asset or sensor the earlier
question named ("那湿度呢？" → "GH-2 那湿度呢？"), and a short follow-up that names nothing is
searched together with the question before it ("Why is that?").
"""

from __future__ import annotations

from typing import Any

from assistant.numbered_sources import approx_tokens
from assistant.routing import named_in
from assistant.types import Source
from tools.site import SiteProfile

SHORT_FOLLOW_UP = 40  # characters: shorter follow-ups that name nothing borrow the earlier question


def merge_sources(prior: list[Source], new: list[Source]) -> tuple[list[Source], list[Source]]:
    """(every source of the turn, the ones the model has not seen): a passage already shown keeps
    its number; other sources are numbered after the earlier ones. Tool results are always new
    (a reading taken now is not the reading of the last turn)."""
    seen = {s.chunk_id: s for s in prior if s.kind == "document" and s.chunk_id}
    merged, fresh = list(prior), []
    for s in new:
        if s.kind == "document" and s.chunk_id in seen:
            continue
        renumbered = Source.from_dict({**s.to_dict(), "n": len(merged) + 1})
        merged.append(renumbered)
        fresh.append(renumbered)
    return merged, fresh


def trim_exchange(exchange: list[dict[str, str]], max_tokens: float) -> list[dict[str, str]]:
    """The latest question/answer pairs that fit in ``max_tokens`` (oldest dropped first: the
    cache then misses once and the conversation continues from the shorter prefix)."""
    pairs = [exchange[i:i + 2] for i in range(0, len(exchange) - 1, 2)]
    kept: list[list[dict[str, str]]] = []
    used = 0.0
    for pair in reversed(pairs):
        cost = sum(approx_tokens(m["content"]) for m in pair)
        if used + cost > max_tokens:
            break
        kept.insert(0, pair)
        used += cost
    return [m for pair in kept for m in pair]


def carry_entities(question: str, earlier: list[str], site: SiteProfile) -> str:
    """A follow-up that names no zone, asset or sensor inherits the ones the
    previous question named ("那湿度呢？" after "温室2号现在温度正常吗？")."""
    def named(text: str) -> list[str]:
        return [x.id for group in named_in(text, site) for x in group]

    if named(question) or not earlier:
        return question
    carried = named(earlier[-1])
    return f"{' '.join(carried)} {question}" if carried else question


def follow_up_question(question: str, earlier: list[str], site: SiteProfile) -> str:
    """The follow-up as routing reads it: with the zone, asset or sensor it leaves out."""
    return carry_entities(question, earlier, site)


def borrowed_question(question: str, standalone: str, previous: str) -> str:
    """The earlier question a short follow-up that names nothing is searched and judged with
    ("Why is that?"), or "". Only searching borrows it: routing does not, so a fault reported
    earlier does not propose a second work order."""
    if standalone == question and previous and len(question) <= SHORT_FOLLOW_UP:
        return previous
    return ""


def next_context(context: dict[str, Any], prompt: str, draft: str, sources: list[dict], question: str,
                 max_tokens: float) -> dict[str, Any]:
    exchange = [*context.get("exchange", []), {"role": "user", "content": prompt}, {"role": "assistant", "content": draft}]
    return {"exchange": trim_exchange(exchange, max_tokens), "sources": sources, "question": question}
