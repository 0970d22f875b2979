"""Times of readings: epoch milliseconds (UTC) in the store, datetimes at the edges.

Shared by the store, the excursion finder, the feeds and the tools, so none of them has to
import another just to convert a time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


def to_ms(at: datetime | int | float) -> int:
    """datetime (naive = UTC) or epoch milliseconds → epoch milliseconds."""
    if isinstance(at, datetime):
        return int(round((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000))
    return int(at)


def from_ms(ms: int, tz=UTC) -> datetime:
    """Epoch milliseconds → an aware datetime in ``tz``."""
    return datetime.fromtimestamp(ms / 1000, tz)


def parse_ts(raw: object) -> int:
    """A timestamp as sent by devices or CSV files → epoch ms.

    Numbers above 1e11 are milliseconds, smaller ones seconds (1e11 s is the year 5138).
    Strings are epoch numbers or ISO 8601; an ISO time without offset is UTC.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"bad timestamp {raw!r}")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = float(text)
        except ValueError:
            try:
                return to_ms(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
            except ValueError:
                raise ValueError(f"bad timestamp {text[:40]!r}") from None
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw) or raw <= 0:
            raise ValueError(f"bad timestamp {raw!r}")
        return int(raw) if raw > 1e11 else int(round(raw * 1000))
    raise ValueError(f"bad timestamp {raw!r}")
