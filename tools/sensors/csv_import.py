"""Import sensor history from CSV: columns ``sensor_id, ts, value`` and optionally ``quality``.

A header row names the columns (any order, extra columns ignored); comma or semicolon separated,
UTF-8 with or without BOM. ``ts`` is ISO 8601 (no offset = UTC) or epoch seconds / milliseconds.
Bad rows are counted and reported with their line numbers; good rows are kept.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from tools.sensors.store import Reading, SensorStore, parse_quality
from tools.sensors.timestamps import parse_ts

log = logging.getLogger(__name__)
REQUIRED = ("sensor_id", "ts", "value")


@dataclass
class ImportReport:
    path: str
    rows: int = 0  # data rows read
    imported: int = 0
    bad: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason), the first max_errors
    unknown_sensors: set[str] = field(default_factory=set)

    @property
    def summary(self) -> str:
        text = f"{self.path}: {self.imported} of {self.rows} rows imported"
        if self.bad:
            shown = "; ".join(f"line {n}: {why}" for n, why in self.errors[:3])
            text += f", {self.bad} bad ({shown}{'; …' if self.bad > 3 else ''})"
        return text


def import_csv(store: SensorStore, path: str | Path, site=None, batch_size: int = 5000,
               max_errors: int = 100) -> ImportReport:
    """Read ``path`` into ``store``. With a site profile, unknown sensor ids are bad rows."""
    p = Path(path)
    report = ImportReport(str(p))
    known = {s.id for s in site.sensors} if site is not None else None
    with p.open(newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
        fh.seek(0)  # the utf-8-sig decoder skips a BOM again after seeking to the start
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(fh, delimiter=delimiter)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            report.bad = 1
            report.errors.append((1, f"header lacks column(s) {', '.join(missing)}; found {', '.join(header) or 'nothing'}"))
            return report
        col = {name: header.index(name) for name in (*REQUIRED, "quality") if name in header}
        batch: list[Reading] = []

        def bad(line: int, why: str) -> None:
            report.bad += 1
            if len(report.errors) < max_errors:
                report.errors.append((line, why))

        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            report.rows += 1
            if len(row) < len(header):
                bad(line, f"expected {len(header)} columns, got {len(row)}")
                continue
            sid = row[col["sensor_id"]].strip()
            if not sid:
                bad(line, "empty sensor_id")
                continue
            if known is not None and sid not in known:
                report.unknown_sensors.add(sid)
                bad(line, f"unknown sensor {sid!r}")
                continue
            try:
                ts = parse_ts(row[col["ts"]])
                value = float(row[col["value"]].strip().replace(",", ".") if delimiter == ";" else row[col["value"]])
                if not math.isfinite(value):
                    raise ValueError(f"value is not a finite number: {row[col['value']]!r}")
                quality = parse_quality(row[col["quality"]].strip() or None) if "quality" in col else 0
            except ValueError as exc:
                bad(line, str(exc) if "could not convert" not in str(exc) else f"bad value {row[col['value']]!r}")
                continue
            batch.append(Reading(sid, ts, value, quality))
            if len(batch) >= batch_size:
                report.imported += store.insert(batch)
                batch.clear()
        report.imported += store.insert(batch)
    if report.bad:
        log.warning("%s", report.summary)
    return report
