"""Early warning for one asset inside the watch: rows on a common time grid, a model fitted on a
reference period and saved as JSON, and stream scoring that carries its state between passes.

- **Grid.** Sensors of one asset report at their own times; the model needs rows. Each sensor's
  readings are reduced to the median per ``grid_s`` bucket (a median, so a lone spike is not a
  row), and a row exists where every sensor of the model has a bucket. Only complete buckets are
  used (the current one may still fill), and only while the asset runs (its ``running_sensor``
  above ``running_above``): a stopped pump is not abnormal, just stopped.
- **Reference.** The first ``reference_h`` hours of running rows the watch sees for the asset
  (or a configured period); the model is fitted once they exist and saved, so a restart reloads
  it instead of learning a different normal from later (possibly already worn) data.
- **Stream.** New rows are scored with the saved ``StreamState`` and the persistence carry, so
  scoring pass by pass gives the same alarms as scoring the whole history at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.errors import ToolInputError
from tools.watch.early_warning import EarlyWarningConfig, EarlyWarningModel, StreamState
from tools.watch.scoring import persistent

FORMAT = "onsite.asset_watch/1"


def bucket_medians(ts: np.ndarray, values: np.ndarray, grid_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket start ms, median) per non-empty bucket; ``ts`` sorted."""
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    b = ts // grid_ms
    cuts = np.flatnonzero(np.diff(b)) + 1
    starts = np.r_[0, cuts]
    meds = np.array([np.median(chunk) for chunk in np.split(values, cuts)])
    return b[starts] * grid_ms, meds


def grid_rows(store, site, asset, sensor_ids: list[str], start: int, end: int, grid_ms: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(row times, rows × sensors) over complete buckets in [start, end) while the asset runs."""
    start = (start // grid_ms) * grid_ms
    last_complete = (end // grid_ms) * grid_ms  # buckets starting before this are complete
    cols: list[tuple[np.ndarray, np.ndarray]] = []
    for sid in sensor_ids:
        ts, v = store.series(sid, start, last_complete)
        ok = np.isfinite(v)
        cols.append(bucket_medians(ts[ok], v[ok], grid_ms))
    if not cols:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0))
    common = cols[0][0]
    for t, _ in cols[1:]:
        common = np.intersect1d(common, t, assume_unique=True)
    if asset.running_sensor is not None:
        rt, rv = (cols[sensor_ids.index(asset.running_sensor)] if asset.running_sensor in sensor_ids
                  else bucket_medians(*store.series(asset.running_sensor, start, last_complete), grid_ms))
        running = rt[rv > asset.running_above]
        common = np.intersect1d(common, running, assume_unique=True)
    rows = np.column_stack([v[np.searchsorted(t, common)] for t, v in cols]) if common.size else \
        np.zeros((0, len(sensor_ids)))
    return common, rows


@dataclass
class AssetWatch:
    """The early-warning state of one asset (model plus where scoring has got to)."""

    asset_id: str
    sensors: list[str]
    model: EarlyWarningModel | None = None
    first_row_ms: int | None = None  # the first running row the watch saw (reference starts here)
    reference: tuple[int, int] | None = None
    scored_to: int | None = None  # rows before this time have been scored
    stream: StreamState | None = None
    carry: list[bool] | None = None  # the last n - 1 over-flags (persistence rule)

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        s = self.stream
        return {"first_row_ms": self.first_row_ms, "scored_to": self.scored_to, "carry": self.carry,
                "stream": None if s is None else {k: None if getattr(s, k) is None else getattr(s, k).tolist()
                                                  for k in ("history", "ewma", "spread")}}

    def load_state(self, data: dict[str, Any]) -> None:
        self.first_row_ms = data.get("first_row_ms")
        self.scored_to = data.get("scored_to")
        self.carry = data.get("carry")
        st = data.get("stream")
        if st:
            self.stream = StreamState(**{k: None if st.get(k) is None else np.asarray(st[k], dtype=float)
                                         for k in ("history", "ewma", "spread")})

    def save_model(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.asset_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "asset": self.asset_id, "reference_ms": list(self.reference),
                                   "model": self.model.to_dict()}), encoding="utf-8")
        tmp.replace(path)  # a crash mid-write never leaves half a model
        return path

    @classmethod
    def load_model(cls, folder: Path, asset_id: str) -> "AssetWatch | None":
        path = folder / f"{asset_id}.json"
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ToolInputError(f"cannot read the early-warning model {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("asset") != asset_id:
            raise ToolInputError(f"{path} is not the early-warning model of {asset_id}")
        model = EarlyWarningModel.from_dict(data["model"])
        ref = data.get("reference_ms") or [None, None]
        return cls(asset_id, list(model.sensors), model, reference=(int(ref[0]), int(ref[1])), scored_to=int(ref[1]))

    # -- one pass ------------------------------------------------------------------------------
    def fit_if_ready(self, store, site, start: int, end: int, grid_ms: int, reference_h: float,
                     period: tuple[int, int] | None, config: EarlyWarningConfig) -> bool:
        """Fit once the reference period is complete; True when a model exists afterwards."""
        if self.model is not None:
            return True
        asset = site.asset(self.asset_id)
        if period is None:
            if self.first_row_ms is None:
                t, _ = grid_rows(store, site, asset, self.sensors, start, end, grid_ms)
                if not t.size:
                    return False
                self.first_row_ms = int(t[0])
            period = (self.first_row_ms, self.first_row_ms + int(reference_h * 3_600_000))
        if end < period[1]:
            return False  # the reference period is not over yet
        t, rows = grid_rows(store, site, asset, self.sensors, period[0], period[1], grid_ms)
        # sensors without a reading in the reference (not installed, dead) are left out of the model
        have = [sid for sid in self.sensors if store.series(sid, period[0], period[1])[0].size]
        if have != self.sensors:
            if len(have) < 2:
                return False
            self.sensors = have
            t, rows = grid_rows(store, site, asset, self.sensors, period[0], period[1], grid_ms)
        self.model = EarlyWarningModel(sensors=list(self.sensors), config=config).fit(rows)
        self.reference = (int(period[0]), int(period[1]))
        self.scored_to = int(period[1])
        self.stream, self.carry = None, None
        return True

    def score_new(self, store, site, end: int, grid_ms: int, k: int, n: int
                  ) -> tuple[np.ndarray, np.ndarray, Any]:
        """Score the rows since ``scored_to``: (row times, alarm flags, Scores)."""
        asset = site.asset(self.asset_id)
        t, rows = grid_rows(store, site, asset, self.sensors, self.scored_to, end, grid_ms)
        scores, self.stream = self.model.score(rows, self.stream)
        self.scored_to = max(self.scored_to, (end // grid_ms) * grid_ms)
        if not len(t):
            return t, np.zeros(0, dtype=bool), scores
        alarm = persistent(scores.over, k, n, None if self.carry is None else np.asarray(self.carry, dtype=bool))
        full = np.concatenate([np.asarray(self.carry or [], dtype=bool), scores.over])
        self.carry = [bool(x) for x in full[-(n - 1):]] if n > 1 else []
        return t, alarm, scores
