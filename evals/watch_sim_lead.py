"""The site watch on the simulator, pass by pass as it runs live: how long before VT-101 reaches its
alarm (4.5 mm/s) the P-101 anomaly alert opens under bearing wear, and which alerts fault-free runs raise.

usage: python evals/watch_sim_lead.py HOURS SEEDS PASS_H [MARGIN|-] [WATCH_SETTINGS_JSON]   (prints JSON)
e.g.   python evals/watch_sim_lead.py 168 3 2 - '{"fault": "bearing_wear:P-101@48"}'
"""
import json
import sys
import tempfile
from datetime import datetime, UTC
from pathlib import Path
import numpy as np
from tools.site import load_site_profile
from tools.sensors.store import SensorStore
from tools.sensors.simulator import simulate
from tools.watch.alerts import AlertStore
from tools.watch.watch import SiteWatch, WatchSettings


def main() -> None:
    site = load_site_profile(Path(__file__).resolve().parent.parent / "knowledge" / "samples" / "site-profile.toml")
    hours, seeds, pass_h = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    cfg = WatchSettings().early_warning_config | ({"margin": float(sys.argv[4])} if len(sys.argv) > 4 and sys.argv[4] != "-" else {})
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    start = datetime(2026, 4, 1, tzinfo=UTC); s0 = int(start.timestamp() * 1000)
    out = {"hours": hours, "pass_h": pass_h, "config": cfg, "settings": extra, "runs": []}
    for fault in (extra.pop("fault", "bearing_wear:P-101@24"), None):
        for seed in range(seeds):
            d = Path(tempfile.mkdtemp()); store = SensorStore(d / "s.sqlite"); alerts = AlertStore(d / "a.sqlite")
            simulate(site, store, hours, [fault] if fault else [], seed=seed, start=start)
            w = SiteWatch(site, store, alerts, WatchSettings(lookback_h=pass_h, early_warning_config=cfg, **extra), models_dir=d / "m")
            ms = []
            for h in np.arange(pass_h, hours + 1e-9, pass_h):
                ms.append(w.run_once(s0 + int(h * 3_600_000)).ms)
            al = {a.cause: a for a in alerts.list(limit=200).alerts}
            ts, v = store.series("VT-101", s0, s0 + int(hours * 3_600_000) + 1)
            over = np.flatnonzero(v > 4.5)
            alarm_h = (ts[over[0]] - s0) / 3.6e6 if over.size else None
            anom = al.get("anomaly:P-101")
            anom_h = (anom.first_seen - s0) / 3.6e6 if anom else None
            process = sorted(c for c in al if not c.startswith("sensor_"))
            out["runs"].append({"fault": fault, "seed": seed, "anomaly_h": anom_h, "vt101_alarm_h": alarm_h,
                                "lead_h": None if anom_h is None or alarm_h is None else round(alarm_h - anom_h, 1),
                                "process_alerts": process, "instrument_alerts": sorted(c for c in al if c.startswith("sensor_")),
                                "pass_ms_median": float(np.median(ms))})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
