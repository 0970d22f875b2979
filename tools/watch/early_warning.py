"""Early warning: a per-asset multivariate anomaly score learned from a reference period of normal
operation, with the sensors that contribute most to each score named.

The method is a multivariate EWMA chart (MEWMA, Lowry et al. 1992) on robustly standardised
features, with a second channel for broken correlations; chosen by measuring on SKAB
(``onsite eval watch``), where a plain Hotelling T² false-alarms on half the normal rows:

- **Robust scaling.** Each feature is centred on its reference median and scaled by its MAD (as a
  standard deviation); when the MAD is far below the standard deviation (quantised readings such
  as a flow meter stuck on a few values) the standard deviation is used instead. Standardised
  values are clipped at ±``CLIP``, so one wild reading cannot carry the averages by itself.
- **Slow sensors are judged by their rate.** A sensor whose reference changes slowly compared with
  its spread (a temperature warming up: its one-step changes spread less than ``SLOW_RATIO`` of its
  level) cannot have its normal *level* learned from a short reference; it enters as its change
  over ``rate_window`` rows, with a variance of at least that of a random walk with its one-step
  spread (a short reference holds few independent windows of it). On SKAB this is what removes
  most false alarms: the fluid temperature keeps drifting after each experiment.
- **Shift channel:** Mahalanobis distance of the EWMA-smoothed features (``alpha``): a sustained
  change of level accumulates, a spike is damped. **Spread channel:** EWMA of each row's own
  distance: a change of variance or a broken correlation, which averages out of smoothed features.
  Covariances are shrunk towards their diagonal (``shrinkage``): a few hundred rows of correlated
  sensors give a near-singular matrix.
- **Thresholds from the reference itself:** each channel's highest score over the reference times
  its margin (never from labels). The score is the larger channel in units of its threshold, so 1.0
  is the threshold. The persistence rule (k of n rows) is applied on top in ``scoring.py``.

Per-sensor contributions split the distance exactly (``d_j * (S^-1 d)_j`` sums to the distance),
which is how an alert names its sensors. The model is plain numbers and saves to JSON (no pickle).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.errors import ToolInputError

CLIP = 5.0  # standardised features are clipped at ± this many scale units
SLOW_RATIO = 0.7  # one-step-change spread / level spread below this → the sensor is judged by its rate
MIN_REFERENCE_ROWS = 50
FORMAT = "onsite.early_warning/1"


@dataclass
class EarlyWarningConfig:
    alpha: float = 0.05  # EWMA weight of the newest row (time constant ~20 rows)
    rate_window: int = 60  # rows over which a slow sensor's change is taken
    shrinkage: float = 0.1  # covariance shrinkage towards its diagonal
    margin: float = 6.0  # shift threshold = margin × its highest score over the reference
    spread_margin: float = 2.0  # spread threshold = spread_margin × its highest score over the reference

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ToolInputError(f"alpha must be in (0, 1], not {self.alpha}")
        if self.rate_window < 1:
            raise ToolInputError(f"rate_window must be at least 1, not {self.rate_window}")
        if not 0 <= self.shrinkage <= 1:
            raise ToolInputError(f"shrinkage must be in [0, 1], not {self.shrinkage}")
        if self.margin <= 0 or self.spread_margin <= 0:
            raise ToolInputError(f"margins must be positive, not {self.margin} and {self.spread_margin}")


@dataclass
class StreamState:
    """What scoring needs to carry from one block of rows to the next: the last ``rate_window`` raw
    rows (for the rates of slow sensors) and the EWMA of the features."""

    history: np.ndarray | None = None
    ewma: np.ndarray | None = None
    spread: np.ndarray | None = None


@dataclass
class Scores:
    score: np.ndarray  # per row, in units of the threshold: the larger of the shift and spread channels
    contributions: np.ndarray  # rows × sensors, summing to ``score`` row by row
    threshold: float
    sensors: list[str]

    @property
    def over(self) -> np.ndarray:
        return self.score > self.threshold

    def top_sensors(self, row: int, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` sensors contributing most to ``row``'s score, with their shares of it."""
        c = self.contributions[row]
        total = float(self.score[row]) or 1.0
        order = np.argsort(-c)[:n]
        return [(self.sensors[j], float(c[j] / total)) for j in order if c[j] > 0]


@dataclass
class EarlyWarningModel:
    sensors: list[str]
    config: EarlyWarningConfig = field(default_factory=EarlyWarningConfig)
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    slow: np.ndarray | None = None  # bool per sensor: judged by its rate
    mean: np.ndarray | None = None  # of the smoothed reference features
    precision: np.ndarray | None = None  # inverse shrunk covariance
    row_mean: np.ndarray | None = None  # spread channel: of the unsmoothed reference features
    row_precision: np.ndarray | None = None
    spread_start: np.ndarray | None = None  # mean per-sensor contribution of a normal row
    threshold: float | None = None  # shift channel, in its own units
    spread_threshold: float | None = None
    reference_rows: int = 0

    # ---- input checks -------------------------------------------------------------------------
    def _rows(self, rows, what: str) -> np.ndarray:
        try:
            x = np.asarray(rows, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ToolInputError(f"{what}: readings must be numbers ({exc})") from None
        if x.ndim != 2:
            raise ToolInputError(f"{what}: expected rows × sensors (2-D), got shape {x.shape}")
        if x.shape[1] != len(self.sensors):
            raise ToolInputError(f"{what}: {x.shape[1]} columns, but the model has {len(self.sensors)} sensors "
                                 f"({', '.join(self.sensors)})")
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ToolInputError(f"{what}: {int(bad.sum())} missing or non-finite value(s), first at row {int(r)}, "
                                 f"sensor {self.sensors[c]}; fill or drop them first")
        return x

    @property
    def ignored(self) -> list[str]:
        """Sensors constant over the reference, which the score leaves out."""
        return [] if self.scale is None else [s for s, v in zip(self.sensors, self.scale) if v == 0]

    @property
    def fitted(self) -> bool:
        return self.threshold is not None

    # ---- fitting ------------------------------------------------------------------------------
    def fit(self, reference) -> "EarlyWarningModel":
        """Learn normal operation from ``reference`` (rows × sensors, anomaly-free, oldest first)."""
        if not self.sensors or len(set(self.sensors)) != len(self.sensors):
            raise ToolInputError("sensors must be a non-empty list of distinct names")
        x = self._rows(reference, "reference")
        need = max(MIN_REFERENCE_ROWS, 2 * self.config.rate_window, 5 * len(self.sensors))
        if len(x) < need:
            raise ToolInputError(f"reference: {len(x)} rows, at least {need} are needed to learn normal operation "
                                 f"of {len(self.sensors)} sensors")
        sd = x.std(axis=0)
        if np.all(sd == 0):
            raise ToolInputError("reference: every sensor is constant; nothing to learn normal variation from")
        self.reference_rows = len(x)
        steps = np.diff(x, axis=0).std(axis=0)
        self.slow = (sd > 0) & (steps < SLOW_RATIO * sd)
        raw = self._raw_features(x, None)
        med = np.median(raw, axis=0)
        mad = 1.4826 * np.median(np.abs(raw - med), axis=0)
        fsd = raw.std(axis=0)
        scale = np.where(mad < 0.5 * fsd, fsd, mad)
        # a slow sensor's change over the window is estimated from ~rows/window windows only; as a
        # random walk its spread would be sqrt(window) × that of its one-step changes, learned from
        # every row: the wider of the two keeps a wandering sensor from alarming
        scale = np.where(self.slow, np.maximum(scale, np.sqrt(self.config.rate_window) * steps), scale)
        # a sensor constant over the reference has no normal variation to judge against: its scale
        # is 0 and it is left out of the score (flatlines are the sensor-fault checks' business)
        self.center, self.scale = med, np.where(sd > 0, scale, 0.0)
        z = self._standard(raw)
        self.row_mean = z.mean(axis=0)
        self.row_precision = self._precision(z - self.row_mean)
        self.spread_start = self._contributions(z, self.row_mean, self.row_precision).mean(axis=0)
        zs, _ = self._smooth(z, None)
        self.mean = zs.mean(axis=0)
        self.precision = self._precision(zs - self.mean)
        self.threshold = self.spread_threshold = 1.0  # lets _channels run on the reference itself
        shift, spread, _, _ = self._channels(z, StreamState())
        self.threshold = float(self.config.margin * shift.max()) or 1e-9
        self.spread_threshold = float(self.config.spread_margin * spread.max()) or 1e-9
        return self

    # ---- scoring ------------------------------------------------------------------------------
    def _raw_features(self, x: np.ndarray, history: np.ndarray | None) -> np.ndarray:
        """Levels for fast sensors, change over ``rate_window`` rows for slow ones. Before a full
        window of history exists the change is taken from the oldest row available."""
        out = x.copy()
        if not self.slow.any():
            return out
        w = self.config.rate_window
        full = x if history is None or not len(history) else np.vstack([history, x])
        offset = len(full) - len(x)
        idx = np.arange(offset, len(full))
        past = full[np.maximum(idx - w, 0)]
        out[:, self.slow] = x[:, self.slow] - past[:, self.slow]
        return out

    def _smooth(self, z: np.ndarray, start: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        a = self.config.alpha
        out = np.empty_like(z)
        # a stream starts from normal (zero after scaling), as MEWMA does, so its first row is
        # weighed like any other rather than taken as the whole average
        m = np.zeros(z.shape[1]) if start is None else start.copy()
        for i, row in enumerate(z):
            m += a * (row - m)
            out[i] = m
        return out, m

    def _standard(self, raw: np.ndarray) -> np.ndarray:
        # clipped so one wild reading moves the averages by at most CLIP × alpha
        live = self.scale > 0
        z = np.zeros_like(raw)
        z[:, live] = np.clip((raw[:, live] - self.center[live]) / self.scale[live], -CLIP, CLIP)
        return z

    def _precision(self, d: np.ndarray) -> np.ndarray:
        cov = np.atleast_2d(np.cov(d, rowvar=False))
        # a slow sensor's variance seen in a short reference is too small (few independent windows):
        # at least the random-walk spread its scale was set to
        idx = np.flatnonzero(self.slow)
        cov[idx, idx] = np.maximum(cov[idx, idx], 1.0)
        shrunk = (1 - self.config.shrinkage) * cov + self.config.shrinkage * np.diag(np.diag(cov))
        return np.linalg.pinv(shrunk + np.eye(len(cov)) * 1e-9 * max(1.0, float(np.trace(cov))))

    @staticmethod
    def _contributions(z: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
        d = z - mean
        return d * (d @ precision)

    def _channels(self, z: np.ndarray, state: StreamState):
        """Shift: Mahalanobis distance of the smoothed features (a sustained change of level).
        Spread: smoothed per-row distance (a change of variance or a broken correlation, which
        averages out of the smoothed features). Each per sensor, in units of its own threshold."""
        zs, last = self._smooth(z, state.ewma)
        shift = self._contributions(zs, self.mean, self.precision) / self.threshold
        per_row = self._contributions(z, self.row_mean, self.row_precision)
        spread, last_spread = self._smooth(per_row, self.spread_start if state.spread is None else state.spread)
        spread = spread / self.spread_threshold
        return shift.sum(axis=1), spread.sum(axis=1), (shift, spread), (last, last_spread)

    def score(self, rows, state: StreamState | None = None) -> tuple[Scores, StreamState]:
        """Score ``rows`` (oldest first) that follow ``state`` (None: the start of a stream). Returns
        the scores and the state to pass with the next block, so a stream can be scored in pieces
        with the same result as in one go."""
        if not self.fitted:
            raise ToolInputError("the early-warning model is not fitted; fit it on a reference period first")
        x = self._rows(rows, "readings")
        state = state or StreamState()
        if not len(x):
            return Scores(np.zeros(0), np.zeros((0, len(self.sensors))), 1.0, list(self.sensors)), state
        shift, spread, (c_shift, c_spread), (last, last_spread) = self._channels(
            self._standard(self._raw_features(x, state.history)), state)
        use_shift = shift >= spread
        score = np.where(use_shift, shift, spread)
        contrib = np.where(use_shift[:, None], c_shift, c_spread)
        keep = self.config.rate_window
        hist = x if state.history is None else np.vstack([state.history, x])
        return (Scores(score, contrib, 1.0, list(self.sensors)),
                StreamState(history=hist[-keep:].copy(), ewma=last, spread=last_spread))

    def channel_scores(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Shift and spread scores of ``rows`` (a stream from its start) in their own units, before
        the thresholds: what a threshold rule is chosen from (``evals/watch_cv.py``)."""
        if not self.fitted:
            raise ToolInputError("the early-warning model is not fitted; fit it on a reference period first")
        x = self._rows(rows, "readings")
        shift, spread, _, _ = self._channels(self._standard(self._raw_features(x, None)), StreamState())
        return shift * self.threshold, spread * self.spread_threshold

    # ---- persistence (JSON, no pickle) --------------------------------------------------------
    def to_dict(self) -> dict:
        if not self.fitted:
            raise ToolInputError("cannot save an early-warning model that is not fitted")
        return {"format": FORMAT, "sensors": list(self.sensors), "config": vars(self.config).copy(),
                "reference_rows": self.reference_rows, "threshold": self.threshold,
                "center": self.center.tolist(), "scale": self.scale.tolist(), "slow": self.slow.tolist(),
                "mean": self.mean.tolist(), "precision": self.precision.tolist(),
                "row_mean": self.row_mean.tolist(), "row_precision": self.row_precision.tolist(),
                "spread_start": self.spread_start.tolist(), "spread_threshold": self.spread_threshold}

    @classmethod
    def from_dict(cls, data: dict) -> "EarlyWarningModel":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ToolInputError(f"not an early-warning model (expected format {FORMAT!r})")
        try:
            model = cls(sensors=list(data["sensors"]), config=EarlyWarningConfig(**data["config"]),
                        reference_rows=int(data["reference_rows"]), threshold=float(data["threshold"]))
            model.center = np.asarray(data["center"], dtype=float)
            model.scale = np.asarray(data["scale"], dtype=float)
            model.slow = np.asarray(data["slow"], dtype=bool)
            model.mean = np.asarray(data["mean"], dtype=float)
            model.precision = np.asarray(data["precision"], dtype=float)
            model.row_mean = np.asarray(data["row_mean"], dtype=float)
            model.row_precision = np.asarray(data["row_precision"], dtype=float)
            model.spread_start = np.asarray(data["spread_start"], dtype=float)
            model.spread_threshold = float(data["spread_threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ToolInputError(f"early-warning model is damaged: {exc}") from None
        n = len(model.sensors)
        vectors = [model.center, model.scale, model.slow, model.mean, model.row_mean, model.spread_start]
        matrices = [model.precision, model.row_precision]
        if (any(v.shape != (n,) for v in vectors) or any(m.shape != (n, n) for m in matrices)
                or not math.isfinite(model.threshold) or not math.isfinite(model.spread_threshold)):
            raise ToolInputError("early-warning model is damaged: its arrays do not match its sensors")
        return model

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        tmp.replace(path)  # a crash mid-write never leaves half a model behind

    @classmethod
    def load(cls, path: Path) -> "EarlyWarningModel":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ToolInputError(f"cannot read early-warning model {path}: {exc}") from None
        return cls.from_dict(data)


def fit_model(reference, sensors: list[str], config: EarlyWarningConfig | None = None) -> EarlyWarningModel:
    return EarlyWarningModel(sensors=list(sensors), config=config or EarlyWarningConfig()).fit(reference)
