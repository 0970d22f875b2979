"""CPU of the site watch per live pass on the sample site: the simulator writes HOURS at STEP_S
seconds per reading, a catch-up pass runs, then PASSES passes one minute apart (prints JSON).

usage: python evals/watch_sim_cpu.py STEP_S HOURS PASSES     e.g. 60 48 120 (as deployed) or 1 8 30 (1 reading/s)
"""
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tools.sensors.simulator import simulate
from tools.sensors.store import SensorStore
from tools.site import load_site_profile
from tools.watch.alerts import AlertStore
from tools.watch.watch import SiteWatch, WatchSettings


def main() -> None:
    step, hours, passes = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    site = load_site_profile(Path(__file__).resolve().parent.parent / "knowledge" / "samples" / "site-profile.toml")
    d = Path(tempfile.mkdtemp())
    store, alerts = SensorStore(d / "s.sqlite"), AlertStore(d / "a.sqlite")
    start = datetime(2026, 4, 1, tzinfo=UTC)
    s0 = int(start.timestamp() * 1000)
    simulate(site, store, hours, [], seed=0, start=start, step_s=step)
    t_catch = s0 + int((hours - passes / 60 - 0.01) * 3_600_000)
    w = SiteWatch(site, store, alerts, WatchSettings(lookback_h=hours), models_dir=d / "m")
    w.run_once(t_catch)
    cpu = []
    for k in range(1, passes + 1):
        c0 = time.process_time()
        w.run_once(t_catch + k * 60_000)
        cpu.append((time.process_time() - c0) * 1000)
    print(json.dumps({"step_s": step, "sensors": len(site.sensors), "readings": store.count(), "passes": passes,
                      "cpu_ms_mean": round(float(np.mean(cpu)), 1), "cpu_ms_median": round(float(np.median(cpu)), 1),
                      "cpu_ms_max": round(float(np.max(cpu)), 1),
                      "core_share_at_60s_interval": round(float(np.mean(cpu)) / 60_000, 5)}))


if __name__ == "__main__":
    main()
