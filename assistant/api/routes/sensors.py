"""/api/v1/sensors: the site's sensors, one sensor's latest reading, and its history in buckets."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool

from assistant.api.app import api_router, get_services
from assistant.api.auth import CurrentPrincipal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.routes.schemas import SITE_ID, SensorItem, SensorLatestData, SeriesData
from assistant.errors import ValidationError

router = api_router(tags=["sensors"], responses=error_responses(401))
SensorId = PathParam(pattern=SITE_ID, description="A sensor id of the site profile, e.g. GH-1-TEMP.")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Readings are stored in epoch milliseconds; outside these years a window means nothing, and near
# year 1 or 9999 the window arithmetic (24 h back, a zone's offset) leaves datetime's range.
EARLIEST, LATEST = datetime(1970, 1, 2), datetime(2100, 1, 1)


def within_years(value: datetime | None, name: str) -> datetime | None:
    """``value`` if it lies in 1970-01-02..2100-01-01 (its own wall time, before any offset)."""
    if value is not None and not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
        raise ValidationError(f"'{name}' must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}: {value.isoformat()}")
    return value


def parse_bucket(text: str | None) -> int | None:
    """'300', '300s', '5m', '1h', '1d' → seconds."""
    if text is None or text == "":
        return None
    m = re.fullmatch(r"(\d{1,6})([smhd]?)", text.strip())
    if not m:
        raise ValidationError("bucket is seconds, or a number with s, m, h or d (e.g. 300, 5m, 1h)")
    return int(m[1]) * _UNITS[m[2] or "s"]


@router.get("/sensors", response_model=Envelope[list[SensorItem]], summary="All sensors with their latest status")
async def sensors(request: Request, principal: CurrentPrincipal) -> Any:
    return ok(await run_in_threadpool(get_services(request).sensors.list_sensors))


@router.get("/sensors/{sensor_id}/latest", response_model=Envelope[SensorLatestData],
            responses=error_responses(404, 422), summary="A sensor's newest reading, judged against its limits")
async def latest(request: Request, principal: CurrentPrincipal, sensor_id: str = SensorId) -> Any:
    return ok(await run_in_threadpool(get_services(request).sensors.sensor_latest, sensor_id))


@router.get("/sensors/{sensor_id}/series", response_model=Envelope[SeriesData],
            responses=error_responses(400, 404, 422), summary="A sensor's history: min / mean / max / last per bucket")
async def series(
    request: Request,
    principal: CurrentPrincipal,
    sensor_id: str = SensorId,
    start: datetime | None = Query(None, alias="from", description="ISO 8601; site-local time without an offset. "
                                   "Default: 24 h before 'to'."),
    end: datetime | None = Query(None, alias="to", description="ISO 8601; default now."),
    bucket: str | None = Query(None, max_length=10, pattern=r"^\d{1,6}[smhd]?$",
                               description="Bucket width: seconds, or 5m / 1h / 1d. Default: ≤ 500 buckets."),
) -> Any:
    """At most 31 days and 2000 buckets per request, between 1970-01-02 and 2100-01-01."""
    service = get_services(request).sensors
    start, end = within_years(start, "from"), within_years(end, "to")
    data = await run_in_threadpool(service.sensor_series, sensor_id, start, end, parse_bucket(bucket))
    return ok(data)
