"""What ``onsite serve`` does before it says "serving": the warm-up turns and the banner.

The first question after a restart used to pay for everything loaded lazily — the embedder,
FAISS and BM25, jieba's dictionary (the first Chinese text), the sensor store's first reads, the
agent's routing and grounding paths. The warm-up runs a Chinese and English search and one whole
turn (a sensor reading and a document question) through a throwaway copy of the agent: same parts, an
in-memory checkpointer and the extractive model, so nothing is written to the conversations or
the audit log and no language model is asked (its own load is timed separately).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import Any

log = logging.getLogger("onsite.server")


def warm_up_question(site: Any) -> str:
    """A question about the site's own first zone and asset: a sensor reading and a document."""
    zone = site.zones[0].id if getattr(site, "zones", None) else "the greenhouse"
    asset = site.assets[0].id if getattr(site, "assets", None) else "the pump"
    return f"What is the temperature in {zone} now, and how do I lock out {asset}?"


def warm_up(services: Any) -> float:
    """Load what the first question needs and answer one warm-up question; the seconds it took.
    A failure is logged (an empty or broken index is reported by /readyz), never fatal."""
    from assistant.graph import AgentGraph
    from assistant.nodes import new_turn

    start = time.perf_counter()
    parts = services.parts
    try:
        parts.retriever.search("预热 warm up", k=1)  # the embedder, FAISS, BM25 and jieba's dictionary
        deps = replace(parts.agent.deps, model=parts.agent.deps.extractive)
        agent = AgentGraph(deps, None, recursion_limit=parts.agent.recursion_limit)
        turn = new_turn(warm_up_question(parts.site), thread_id=f"warm-up-{uuid.uuid4().hex}", scope={}, photos=[],
                        user="warm-up", deadline_s=60, max_tokens=256)
        for _ in agent.stream(turn["thread_id"], turn):  # routing, tools, answerability, extract, checks
            pass
        agent.close()
    except Exception as exc:  # noqa: BLE001 - the server still starts; the first question pays instead
        log.warning("warm-up failed: %s", exc)
    seconds = time.perf_counter() - start
    log.info("warm-up: %.1f s", seconds)
    return seconds


def api_lines(url: str, configured_keys: int, first: Any) -> list[str]:
    """How to call the APIs: the generated key and a curl line that works, or (keys configured)
    the header to send, without printing any secret."""
    example = f"{url}/api/v1/sensors"
    if first is not None:
        return [f"  API key:     {first.key} (generated; in {first.path} — set ONSITE_API_KEYS to choose your own)",
                f"  try:         curl -H \"Authorization: Bearer {first.key}\" {example}"]
    if configured_keys:
        return [f"  API calls:   send a configured key: curl -H \"Authorization: Bearer $KEY\" {example}"]
    return []
