"""`onsite advice`: the daily advice of one zone or all, made (and stored) if it is not yet, with
the time each took — the figure for the advice's cost per zone, in extract mode or with the model."""

from __future__ import annotations

import json
import time
from datetime import date as Date
from typing import Any

import typer

from assistant.cli_common import bad_input, fail
from assistant.errors import USER_ERRORS
from tools.errors import NotFoundError


def run_advice(settings: Any, zone: str | None, day: str | None, as_json: bool) -> None:
    from assistant.advice import Advisor
    from assistant.llm import load_chat_model
    from assistant.llm.extractive import ExtractiveModel
    from knowledge.embedding import make_embedder
    from knowledge.retrieval import Retriever
    from tools.advice.store import AdviceStore
    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile

    try:
        advice_date = Date.fromisoformat(day) if day else None
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {day!r}", param_hint="--date") from None
    try:
        t0 = time.perf_counter()
        embedder = make_embedder(settings.embedding, settings.home)
        loaded = load_chat_model(settings, embedder)
        advisor = Advisor(load_site_profile(settings.site_profile), SensorStore(settings.sensors_db),
                          Retriever(settings, embedder=embedder), AdviceStore(settings.advice_db),
                          settings.advice, model=lambda: loaded.model,
                          extractive=ExtractiveModel(embedder, reason="daily advice"))
        setup_s = time.perf_counter() - t0
        out = []
        for z in [zone] if zone else advisor.zones():
            t = time.perf_counter()
            a = advisor.get(z, advice_date)
            out.append({**a, "seconds": round(time.perf_counter() - t, 3)})
    except NotFoundError as exc:  # an unknown zone: the known ones are in the message
        bad_input(exc)
    except USER_ERRORS as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps({"mode": loaded.mode, "setup_s": round(setup_s, 3), "advice": out},
                              ensure_ascii=False, indent=1))
        return
    for a in out:
        if a["status"] == "pending":
            typer.echo(f"{a['zone']} {a['date']}: not ready; it will be made at {a['ready_at']}")
            continue
        typer.echo(a["body"])
        typer.echo("")
