"""Time to the first answer token through the whole agent (``onsite bench agent``).

The sample site's own questions (evals/site_questions.jsonl, answerable ones, sampled with a
seed) are asked through the turn service with a real model: each as a fresh conversation, then a
follow-up in the same conversation ("why?" in the question's language). For every turn: time
from the question to the first streamed answer token, the whole turn, and what the model call
reported (prompt tokens, tokens reused from the KV cache). ``other_cpu_pct`` says how busy the
rest of the box was: figures taken above ~10 % are this machine's speed while shared.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from evals.bench_llm import _Neighbours
from evals.retrieval import percentile_ms
from evals.site_questions import load_site_questions

FOLLOW_UP = {"en": "Why is that?", "zh": "为什么？"}


def run_agent_bench(settings: Any, loaded: Any, embedder: Any, *, questions: int = 10, seed: int = 0,
                    progress: Callable[[str], None] = print) -> dict[str, Any]:
    from assistant.wiring import build_services
    from knowledge.builder import build_index
    from knowledge.retrieval import Retriever

    pool = [q for q in load_site_questions() if q.answerable]
    asked = random.Random(seed).sample(pool, min(questions, len(pool)))
    fresh: list[dict[str, Any]] = []
    follow: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="onsite-bench-agent-") as tmp:
        run_settings = settings.model_copy(update={"home": Path(tmp) / "home"})
        build_index([settings.samples_dir.resolve()], run_settings, embedder=embedder)
        retriever = Retriever(run_settings, embedder=embedder)
        retriever.search("warm up", k=1)  # index and embedder loaded before the first question
        services = build_services(run_settings, loaded=loaded, embedder=embedder, retriever=retriever)
        try:
            with _Neighbours() as neighbours:
                for i, q in enumerate(asked):
                    progress(f"{i + 1}/{len(asked)} {q.id}")
                    thread = f"bench-{i}"
                    fresh.append(_turn(services.turns, q.question, thread, loaded.model))
                    follow.append(_turn(services.turns, FOLLOW_UP.get(q.lang, FOLLOW_UP["en"]), thread, loaded.model))
        finally:
            services.close()
    return {"model": getattr(loaded.model, "name", loaded.mode), "mode": loaded.mode, "questions": len(asked),
            "seed": seed, "fresh": _summary(fresh), "follow_up": _summary(follow),
            "other_cpu_pct": round(neighbours.pct, 1)}


def _turn(turns: Any, question: str, thread: str, model: Any) -> dict[str, Any]:
    start, first, status, mode = time.perf_counter(), None, "", ""
    for ev in turns.ask(question, thread_id=thread, user="bench"):
        if ev.type == "token" and first is None:
            first = time.perf_counter()
        elif ev.type == "done":
            status, mode = ev.data.get("status", ""), ev.data.get("mode", "")
    end = time.perf_counter()
    done = getattr(model, "last_done", None)  # the runtime's last call: the answer (or its fallback)
    usage = getattr(done, "usage", None)
    return {"ttft_ms": None if first is None else (first - start) * 1000, "turn_ms": (end - start) * 1000,
            "status": status, "mode": mode,
            "prompt_tokens": getattr(usage, "prompt_tokens", None), "cached_tokens": getattr(usage, "cached_prompt_tokens", None)}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ttft = [r["ttft_ms"] for r in runs if r["ttft_ms"] is not None]
    turn = [r["turn_ms"] for r in runs]
    prompts = [r["prompt_tokens"] for r in runs if r["prompt_tokens"]]
    cached = [r["cached_tokens"] for r in runs if r["cached_tokens"] is not None]
    return {"ttft_ms": {"p50": percentile_ms(ttft, 50), "p95": percentile_ms(ttft, 95)},
            "turn_ms": {"p50": percentile_ms(turn, 50), "p95": percentile_ms(turn, 95)},
            "answered_by_model": sum(1 for r in runs if r["mode"] == "llm"), "turns": len(runs),
            "prompt_tokens_median": sorted(prompts)[len(prompts) // 2] if prompts else None,
            "cached_tokens_median": sorted(cached)[len(cached) // 2] if cached else None}
