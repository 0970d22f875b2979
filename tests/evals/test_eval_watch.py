"""evaluate_watch on time-series sets in the shared format: the figures on a hand-computable case,
a generated set end to end (with the T² baseline), the CLI, and a folder that is not such a set."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.errors import ValidationError
from evals.watch import alert_openings, evaluate_watch, figures

SKAB = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / "evaldata" / "skab_valve1",
                         Path("/work/shared/evaldata/skab_valve1")) if p.is_dir()), None)
SENSORS = ["Vibration", "Current", "Pressure", "Flow"]


def test_figures_on_a_hand_computed_case():
    y = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    alarm = np.array([0, 0, 0, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    f = figures([(np.arange(10.0), y, alarm)])
    # tp 2 (rows 3, 4), fp 2 (7, 8), fn 2 (2, 5), tn 4
    assert f["f1"] == 0.5 and f["far"] == round(2 / 6, 4) and f["mar"] == 0.5
    assert (f["events"], f["events_detected"], f["median_delay_s"]) == (1, 1, 1.0)
    # the stretch 3–4 touches the anomaly; 7–8 does not: one false event in 6 s of normal data
    assert f["false_events"] == 1 and f["false_events_per_hour"] == 600.0


def test_alerts_are_counted_as_the_alert_store_would_with_its_quiet_period():
    secs = np.arange(40.0)
    alarm = np.zeros(40, dtype=bool)
    alarm[[2, 3, 8, 9, 10, 30, 31]] = True
    # stretch 2–3 opens and closes at 3 s; 8–10 starts 5 s later (within a 10 s quiet period):
    # suppressed, and it does not move the close, so 30–31 (27 s after it) opens a second alert
    assert alert_openings(secs, alarm, 10.0) == [(2, 4, 2), (8, 11, None), (30, 32, 30)]
    assert alert_openings(secs, alarm, 0.0) == [(2, 4, 2), (8, 11, 8), (30, 32, 30)]
    # a suppressed alarm that lasts past the quiet period opens an alert when the period ends
    long = np.zeros(40, dtype=bool)
    long[[0, 1]] = True
    long[5:30] = True
    assert alert_openings(secs, long, 10.0) == [(0, 2, 0), (5, 30, 11)]


def test_alert_figures_separate_what_pages_an_operator_from_alarmed_stretches():
    y = np.zeros(60, dtype=bool)
    y[20:30] = True
    alarm = np.zeros(60, dtype=bool)
    alarm[[5, 6]] = True  # a false alarm shortly before the anomaly…
    alarm[22:28] = True  # …whose quiet period swallows the anomaly's own alert
    alarm[[40, 41]] = True  # a recovery blip after it
    f = figures([(np.arange(60.0), y, alarm)], quiet_s=40.0)
    assert (f["false_events"], f["events_detected"]) == (2, 1)
    # one alert opens (the false one); the anomaly and the blip are suppressed: nobody is paged
    # for the real fault, and that shows as events_alerted 0
    assert (f["alert_events"], f["false_alert_events"], f["events_alerted"]) == (1, 1, 0)
    f0 = figures([(np.arange(60.0), y, alarm)], quiet_s=0.0)
    assert (f0["alert_events"], f0["false_alert_events"], f0["events_alerted"]) == (3, 2, 1)
    assert f0["false_alert_events_per_hour"] == f0["false_events_per_hour"]


def write_set(root: Path, files: int = 3, rows: int = 900, reference: int = 400, kind: str = "timeseries") -> Path:
    (root / "series").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"name": "generated", "kind": kind, "reference_rows": reference}))
    start = datetime(2026, 1, 1)
    for i in range(files):
        rng = np.random.default_rng(i)
        load, suction = rng.normal(size=rows), rng.normal(size=rows)
        x = np.column_stack([load + 0.3 * rng.normal(size=rows), 2 * load + 0.3 * rng.normal(size=rows),
                             suction + 0.3 * rng.normal(size=rows), load + suction + 0.3 * rng.normal(size=rows)])
        y = np.zeros(rows, dtype=int)
        y[600:750] = 1
        x[600:750, 3] -= 4.0  # the flow drops while a valve is shut
        lines = ["timestamp," + ",".join(SENSORS) + ",anomaly,changepoint"]
        for r in range(rows):
            ts = (start + timedelta(seconds=r)).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"{ts}," + ",".join(f"{v:.5f}" for v in x[r]) + f",{y[r]},{int(r == 600)}")
        (root / "series" / f"run_{i}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_a_generated_set_end_to_end(tmp_path):
    result = evaluate_watch(write_set(tmp_path / "set"))
    assert result["files"] == 3 and result["events"] == 3 and result["events_detected"] == 3
    # the smoothed score takes a few tens of rows to fall after the valve reopens: those rows are
    # the false alarms here, and they are no separate alert event
    assert result["f1"] > 0.8 and result["far"] < 0.2 and result["false_events"] == 0
    assert 0 < result["median_delay_s"] < 60
    assert {"f1", "far", "mar", "events", "events_detected", "median_delay_s", "false_events_per_hour"} <= set(result["baseline"])
    assert result["ms_per_row"] > 0 and len(result["per_file"]) == 3
    assert all(f["first_alarm_top_sensors"][0] == "Flow" for f in result["per_file"])


def test_the_cli_prints_json(tmp_path):
    from assistant.cli import app

    out = CliRunner().invoke(app, ["eval", "watch", str(write_set(tmp_path / "set", files=1)), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["events"] == 1


def test_a_folder_that_is_not_a_timeseries_set_is_a_clear_error(tmp_path):
    with pytest.raises(ValidationError, match="not a time-series set"):
        evaluate_watch(tmp_path)
    with pytest.raises(ValidationError, match="kind is 'inspection'"):
        evaluate_watch(write_set(tmp_path / "insp", files=1, kind="inspection"))
    with pytest.raises(ValidationError, match="no test part"):
        evaluate_watch(write_set(tmp_path / "short", files=1, rows=300))
    with pytest.raises(ValidationError, match="anomalies inside the reference"):
        evaluate_watch(write_set(tmp_path / "late", files=1, reference=700))


@pytest.mark.skipif(SKAB is None, reason="SKAB valve1 set not present (shared/evaldata/skab_valve1)")
def test_skab_valve1_beats_the_plain_t2_baseline():
    result = evaluate_watch(SKAB)
    assert result["events"] == 16 and result["events_detected"] >= 15
    assert result["f1"] > result["baseline"]["f1"] and result["far"] < 0.10
    assert result["false_events_per_hour"] < result["baseline"]["false_events_per_hour"] / 10
    # as an operator is paged (AlertStore quiet period): the T² baseline's false alerts come before
    # the anomalies and swallow their alerts; ours page for every anomaly detected and nothing else
    assert result["events_alerted"] == result["events_detected"] and result["false_alert_events"] == 0
    assert result["baseline"]["events_alerted"] < 8


def test_cross_validation_chooses_on_one_half_and_reports_the_other(tmp_path):
    from evals.watch_cv import RULES, cross_validate

    result = cross_validate(write_set(tmp_path / "set", files=4))
    assert set(result["rules"]) == set(RULES)
    for rule in result["rules"].values():
        # 2 splits × 2 directions × 2 objectives, each reported on the files it was not chosen on
        assert len(rule["cv"]) == 8
        for c in rule["cv"]:
            assert c["test"]["events"] == 2 and len(c["chosen_on"]) == 2
        assert all(0 <= m["f1"] <= 1 for m in rule["cv_mean"].values())
    # the watch's rule at its default margins reproduces evaluate_watch on the same files
    direct = evaluate_watch(tmp_path / "set")
    default = result["rules"]["reference_max"]["all_files"]["[6, 2]"]
    assert (default["f1"], default["far"], default["false_events"]) == (direct["f1"], direct["far"], direct["false_events"])
