"""CSV history import: good rows kept, bad rows counted with their line numbers."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tools.site import load_site_profile
from tools.sensors.csv_import import import_csv
from tools.sensors.store import SensorStore, to_ms

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
TS = to_ms(datetime(2025, 4, 15, 0, 0, tzinfo=UTC))




def write(tmp_path, text, name="history.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


def test_good_rows_kept_bad_rows_reported_by_line(tmp_path, store):
    path = write(tmp_path, "\n".join([
        "ts,sensor_id,value,quality,comment",          # 1: any column order, extra columns ignored
        "2025-04-15T00:00:00Z,GH-1-TEMP,17.2,good,",   # 2
        f"{TS + 60_000},GH-1-TEMP,17.1,,",             # 3: epoch ms, empty quality = good
        f"{(TS + 120_000) / 1000},GH-1-TEMP,17.0,uncertain,",  # 4: epoch seconds
        "2025-04-15T08:03:00+08:00,GH-1-TEMP,16.9,2,",  # 5: offset, numeric quality (bad)
        "yesterday,GH-1-TEMP,16.8,good,",               # 6: bad ts
        "2025-04-15T00:05:00Z,GH-1-TEMP,warm,good,",    # 7: bad value
        "2025-04-15T00:06:00Z,GH-1-TEMP,nan,good,",     # 8: not finite
        "2025-04-15T00:07:00Z,GH-1-TEMP,16.5,excellent,",  # 9: bad quality
        "2025-04-15T00:08:00Z,GH-1-TEMP",               # 10: too few columns
        "",                                             # 11: blank lines are skipped
        "2025-04-15T00:09:00Z,,16.4,good,",             # 12: empty sensor id
        "2025-04-15T00:10:00Z,GH-9-TEMP,16.3,good,",    # 13: unknown with a profile
        "2025-04-15T00:11:00Z,VT-101,1.62,good,",       # 14
    ]) + "\n")
    report = import_csv(store, path, site=load_site_profile(SAMPLE))
    assert (report.rows, report.imported, report.bad) == (12, 5, 7)
    assert [n for n, _ in report.errors] == [6, 7, 8, 9, 10, 12, 13]
    reasons = dict(report.errors)
    assert "bad timestamp 'yesterday'" in reasons[6] and "bad value 'warm'" in reasons[7]
    assert "not a finite number" in reasons[8] and "bad quality 'excellent'" in reasons[9]
    assert "expected 5 columns, got 2" in reasons[10] and "unknown sensor 'GH-9-TEMP'" in reasons[13]
    assert report.unknown_sensors == {"GH-9-TEMP"}
    assert "5 of 12 rows imported, 7 bad (line 6:" in report.summary
    assert store.count("GH-1-TEMP") == 4 and store.count("VT-101") == 1
    latest = store.latest(["GH-1-TEMP"])["GH-1-TEMP"]
    assert (latest.ts, latest.value, latest.quality) == (TS + 180_000, 16.9, 2)


def test_without_profile_any_sensor_id_is_accepted(tmp_path, store):
    path = write(tmp_path, "sensor_id,ts,value\nANY-1,2025-04-15T00:00:00Z,1\n")
    report = import_csv(store, path)
    assert report.imported == 1 and report.bad == 0 and store.count("ANY-1") == 1


def test_semicolons_decimal_commas_and_bom(tmp_path, store):
    path = write(tmp_path, "\ufeffsensor_id;ts;value\nPT-102;2025-04-15T00:00:00Z;3,34\nPT-102;2025-04-15T00:01:00Z;3,31\n")
    report = import_csv(store, path)
    assert report.imported == 2 and store.latest(["PT-102"])["PT-102"].value == 3.31


def test_missing_columns_is_one_clear_error(tmp_path, store):
    report = import_csv(store, write(tmp_path, "sensor,time,reading\nA,1,2\n"))
    assert report.imported == 0 and report.bad == 1
    assert report.errors[0][0] == 1 and "lacks column(s) sensor_id, ts, value" in report.errors[0][1]


def test_large_file_in_batches_and_error_list_capped(tmp_path, store):
    lines = ["sensor_id,ts,value"] + [f"S,{TS + i * 1000},{i}" if i % 100 else f"S,{TS + i * 1000},x"
                                      for i in range(20_000)]
    report = import_csv(store, write(tmp_path, "\n".join(lines)), batch_size=3000, max_errors=10)
    assert report.imported == 19_800 and report.bad == 200 and len(report.errors) == 10
    assert report.errors[0][0] == 2 and store.count("S") == 19_800
