"""Cross-validation of the early-warning threshold rule across the files of a time-series set, so a
figure is never read off the files its parameter was chosen on.

Each file's model is fitted once on its reference rows (default ``EarlyWarningConfig``); only the
two channel thresholds vary, by rule:

- ``reference_max`` (what the watch uses): each channel's highest score over the reference, in
  sample, times a margin (grid over margin × spread_margin);
- ``leave_out_max``: the reference cut into ``FOLDS`` contiguous blocks, each scored by a model
  fitted on the others; the highest out-of-sample score times a margin (a margin of 1 would need
  no fudge factor);
- ``leave_out_pot``: a generalised Pareto tail fitted (method of moments) to the out-of-sample
  scores above their 90th percentile, the threshold at a target exceedance probability per row.

Each rule's parameter is chosen on one half of the files and its figures reported on the other
half, both ways, for two splits (even/odd files, first/second half); two ways of choosing
(``OBJECTIVES``): the best F1 within FAR <= 10 %, or the issue's targets as constraints first.

usage: python evals/watch_cv.py DATASET_DIR   (prints JSON)
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

from evals.watch import PERSIST_K, PERSIST_N, figures, read_set
from tools.watch.early_warning import EarlyWarningConfig, fit_model
from tools.watch.scoring import persistent

FOLDS = 4
RULES = {
    "reference_max": list(itertools.product([3, 4, 5, 6, 8, 10], [1.5, 2, 3])),
    "leave_out_max": list(itertools.product([0.75, 1, 1.25, 1.5, 2], [1, 1.25, 1.5, 2])),
    "leave_out_pot": [(p,) for p in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5)],
}
# how a parameter is chosen on the training half: the best F1 within the FAR target, or the targets
# as constraints (FAR <= 10 % and no false alert event) and then the most events detected and F1
OBJECTIVES = {
    "f1_within_far": lambda f: (f["far"] <= 0.10, f["f1"] or 0.0, -f["false_events"]),
    "targets_first": lambda f: (f["far"] <= 0.10 and f["false_alert_events"] == 0, f["events_detected"], f["f1"] or 0.0),
}
KEYS = ("f1", "far", "mar", "events", "events_detected", "median_delay_s", "false_events", "false_alert_events",
        "normal_hours")


def leave_out(ref: np.ndarray, sensors: list[str], config: EarlyWarningConfig) -> tuple[np.ndarray, np.ndarray]:
    """Shift and spread scores of each reference block from a model fitted on the other blocks."""
    edges = np.linspace(0, len(ref), FOLDS + 1).astype(int)
    shift, spread = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        sub = fit_model(np.vstack([ref[:a], ref[b:]]), sensors, config)
        s1, s2 = sub.channel_scores(ref)  # the whole reference as a stream, so the block has its history
        shift.append(s1[a:b])
        spread.append(s2[a:b])
    return np.concatenate(shift), np.concatenate(spread)


def pot_level(s: np.ndarray, p: float, q0: float = 0.9) -> float:
    """Score exceeded with probability ``p`` per row under a GPD tail over the ``q0`` quantile."""
    u = float(np.quantile(s, q0))
    e = s[s > u] - u
    m, v = float(e.mean()), float(e.var()) or 1e-12
    xi = min(max(0.5 * (1 - m * m / v), -0.5), 0.5)  # clipped: a few dozen excesses give a wild shape
    sigma = 0.5 * m * (m * m / v + 1)
    r = p * len(s) / len(e)
    return u + (sigma / xi * (r ** -xi - 1) if abs(xi) > 1e-6 else -sigma * np.log(r))


def thresholds(rule: str, params: tuple, f: dict) -> tuple[float, float]:
    if rule == "reference_max":
        return params[0] * f["in_max"][0], params[1] * f["in_max"][1]
    if rule == "leave_out_max":
        return params[0] * f["lo"][0].max(), params[1] * f["lo"][1].max()
    return pot_level(f["lo"][0], params[0]), pot_level(f["lo"][1], params[0])


def cross_validate(dataset_dir: Path) -> dict:
    info, series = read_set(dataset_dir)
    ref_rows, config = info["reference_rows"], EarlyWarningConfig()
    files = []
    for name, sensors, secs, x, y in series:
        model = fit_model(x[:ref_rows], sensors, config)
        shift, spread = model.channel_scores(x)
        files.append({"name": name, "secs": secs[ref_rows:], "y": y[ref_rows:], "shift": shift, "spread": spread,
                      "in_max": (shift[:ref_rows].max(), spread[:ref_rows].max()),
                      "lo": leave_out(x[:ref_rows], sensors, config)})
    n = len(files)
    splits = {"even/odd": ([i for i in range(n) if i % 2 == 0], [i for i in range(n) if i % 2]),
              "first/second": (list(range(n // 2)), list(range(n // 2, n)))}
    out = {"dataset": info.get("name") or Path(dataset_dir).name, "files": n, "folds": FOLDS,
           "persistence": f"{PERSIST_K} of {PERSIST_N}", "rules": {}}
    for rule, grid in RULES.items():
        parts = {}
        for params in grid:
            parts[params] = []
            for f in files:
                t1, t2 = thresholds(rule, params, f)
                over = np.maximum(f["shift"] / t1, f["spread"] / t2) > 1.0
                parts[params].append((f["secs"], f["y"], persistent(over, PERSIST_K, PERSIST_N)[ref_rows:]))
        cv = []
        for split, (a, b) in splits.items():
            for train, test in ((a, b), (b, a)):
                for name, objective in OBJECTIVES.items():
                    best = max(grid, key=lambda params: objective(figures([parts[params][i] for i in train])))
                    fig = figures([parts[best][i] for i in test])
                    cv.append({"split": split, "objective": name, "chosen_on": [files[i]["name"] for i in train],
                               "params": list(best), "test": {k: fig[k] for k in KEYS}})
        out["rules"][rule] = {
            "cv": cv, "cv_mean": {name: {k: round(float(np.mean([c["test"][k] for c in cv if c["objective"] == name])), 4)
                                         for k in ("f1", "far", "events_detected", "false_events", "false_alert_events")}
                                  for name in OBJECTIVES},
            "all_files": {json.dumps(list(p)): {k: figures(parts[p])[k] for k in KEYS} for p in grid}}
    return out


if __name__ == "__main__":
    print(json.dumps(cross_validate(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/evaldata/skab_valve1")),
                     indent=1))
