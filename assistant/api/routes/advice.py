"""/api/v1/advice: the daily crop advice per greenhouse zone (operator) — the previous day against
the crop stage's targets, what to change today, each recommendation cited from the crop guide —
and a regenerate for admins. An advice not made yet is made on request once the day it reads is
over; a future date answers ``pending`` with the time it will be ready."""

from __future__ import annotations

from datetime import date as Date
from typing import Any, Literal

from fastapi import Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from assistant.advice import advisor_for
from assistant.api.app import api_router, get_services
from assistant.api.auth import AdminPrincipal, CurrentPrincipal
from assistant.api.envelope import Envelope, error_responses, ok
from tools.errors import ToolInputError
from tools.site.layout import ID_PATTERN

router = api_router(tags=["advice"], responses=error_responses(401))
DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"  # only this form: a number (an epoch) is not a date here
ZoneId = PathParam(pattern=ID_PATTERN, description="A greenhouse zone id, e.g. GH-1.")


def _date(text: str | None) -> Date | None:
    if text is None:
        return None
    try:
        return Date.fromisoformat(text)
    except ValueError:
        raise ToolInputError(f"date: not a calendar date: {text}") from None  # 400, like other bad values


class AdviceOut(BaseModel):
    status: Literal["ready", "pending", "unavailable"] = Field(
        description="pending: not made yet (see ready_at); unavailable: a past date with no advice (see note).")
    note: str | None = None
    zone: str
    date: str = Field(description="The advice's local date; it reads the day before (`day`).")
    ready_at: str | None = Field(None, description="When a pending advice will be made (site time, ISO 8601).")
    id: int | None = None
    day: str | None = Field(None, description="The local day whose readings the advice reads.")
    created_ms: int | None = None
    lang: str | None = None
    severity: Literal["info", "warning"] | None = Field(None, description="warning when something was off.")
    headline: str | None = None
    body: str | None = Field(None, description="The full text: label, advice, numbered sources.")
    text: str | None = Field(None, description="The advice without label and sources.")
    mode: Literal["extractive", "llm", "fallback"] | None = Field(
        None, description="extractive: the template; llm: the model's rewrite; fallback: the template because "
        "the model's text failed the citation check (mode_note says why).")
    mode_note: str | None = None
    summary: dict[str, Any] | None = Field(None, description="The day in numbers per metric and period.")
    findings: list[dict[str, Any]] = Field(default_factory=list)
    recommendations: list[dict[str, Any]] = Field(default_factory=list, description="Per finding: the quoted "
                                                  "sentences with their citation numbers.")
    citations: list[dict[str, Any]] = Field(default_factory=list, description="n, doc, section, page, source.")


class AdviceListOut(BaseModel):
    date: str
    advice: list[AdviceOut]


@router.get("/advice", response_model=Envelope[AdviceListOut], responses=error_responses(400, 404, 422),
            summary="The daily advice of every greenhouse zone (or one) for a date (default today)")
async def get_advice(
    request: Request,
    principal: CurrentPrincipal,
    zone: str | None = Query(None, pattern=ID_PATTERN, description="One zone id (default: every advised zone)."),
    date: str | None = Query(None, pattern=DATE_PATTERN, description="The advice's date, YYYY-MM-DD (default: "
                             "today, site time)."),
) -> Any:
    advisor = advisor_for(get_services(request))
    date = _date(date)

    def collect() -> dict[str, Any]:
        day = date or advisor.today()
        zones = [zone] if zone else advisor.zones()
        return {"date": day.isoformat(), "advice": [advisor.get(z, day) for z in zones]}

    return ok(await run_in_threadpool(collect))


@router.post("/advice/{zone}/regenerate", response_model=Envelope[AdviceOut], responses=error_responses(400, 403, 404, 422),
             summary="Make a zone's advice for a date again (admin), e.g. after late readings arrived")
async def regenerate(request: Request, principal: AdminPrincipal, zone: str = ZoneId,
                     date: str | None = Query(None, pattern=DATE_PATTERN, description="Default: today (site time).")
                     ) -> Any:
    advisor = advisor_for(get_services(request))
    date = _date(date)
    stored = await run_in_threadpool(lambda: advisor.regenerate(zone, date or advisor.today()))
    return ok({"status": "ready", **stored.to_dict()})
