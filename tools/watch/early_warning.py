"""Early warning: a per-asset multivariate anomaly score learned from a reference period of normal
operation, with the sensors that contribute most to each score named.

The method is a multivariate EWMA chart (MEWMA, Lowry et al. 1992) on robustly standardised
features, chosen by measuring on SKAB (``onsite eval watch``):

- **Robust scaling.** Each sensor is centred on its reference median and scaled by its MAD (as a
  standard deviation); when the MAD is far below the standard deviation (quantised readings such
  as a flow meter stuck on a few values) the standard deviation is used instead, so one repeated
  value does not make every other reading look extreme.
- **Slow sensors are judged by their rate.** A sensor whose reference changes slowly compared with
  its spread (a temperature warming up: the spread of its one-step changes is below
  ``SLOW_RATIO`` of its level spread) cannot have its normal *level* learned from a short reference;
  it enters as its change over ``rate_window`` rows instead. On SKAB this halves the false alarms
  that a drifting fluid temperature caused after each experiment.
- **EWMA then Mahalanobis.** The standardised features are smoothed (``alpha``) before the distance,
  so a single spike is damped and a sustained shift accumulates; the covariance is that of the
  smoothed reference, shrunk towards its diagonal (``shrinkage``) because a few hundred rows of
  correlated sensors give a near-singular matrix.
- **Threshold from the reference itself:** the highest smoothed score seen in the reference times
  ``margin`` (never from labels). The persistence rule (k of n) is applied on top of it in
  ``tools/watch/scoring.py``.

Per-sensor contributions split the distance exactly: ``d_j * (S^-1 d)_j`` summed over j is the
score. The model is plain numbers and saves to JSON (no pickle).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.errors import ToolInputError

SLOW_RATIO = 0.7  # one-step-change spread / level spread below this → the sensor is judged by its rate
MIN_REFERENCE_ROWS = 50
FORMAT = "onsite.early_warning/1"


@dataclass
class EarlyWarningConfig:
    alpha: float = 0.05  # EWMA weight of the newest row (time constant ~20 rows)
    rate_window: int = 60  # rows over which a slow sensor's change is taken
    shrinkage: float = 0.1  # covariance shrinkage towards its diagonal
    margin: float = 2.5  # threshold = margin × highest smoothed reference score

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ToolInputError(f"alpha must be in (0, 1], not {self.alpha}")
        if self.rate_window < 1:
            raise ToolInputError(f"rate_window must be at least 1, not {self.rate_window}")
        if not 0 <= self.shrinkage <= 1:
            raise ToolInputError(f"shrinkage must be in [0, 1], not {self.shrinkage}")
        if self.margin <= 0:
            raise ToolInputError(f"margin must be positive, not {self.margin}")


@dataclass
class StreamState:
    """What scoring needs to carry from one block of rows to the next: the last ``rate_window`` raw
    rows (for the rates of slow sensors) and the EWMA of the features."""

    history: np.ndarray | None = None
    ewma: np.ndarray | None = None


@dataclass
class Scores:
    score: np.ndarray  # smoothed Mahalanobis distance per row
    contributions: np.ndarray  # rows × sensors, summing to ``score`` row by row
    threshold: float
    sensors: list[str]

    @property
    def over(self) -> np.ndarray:
        return self.score > self.threshold

    def top_sensors(self, row: int, n: int = 3) -> list[tuple[str, float]]:
        """The sensors that contribute most to one row's score, as (name, share of the score)."""
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
    threshold: float | None = None
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
        # a constant sensor gets a tiny scale floor: any change of it then stands out, as it should
        floor = 1e-6 * np.maximum(1.0, np.abs(med))
        self.center, self.scale = med, np.maximum(scale, floor)
        z, _ = self._smooth((raw - self.center) / self.scale, None)
        self.mean = z.mean(axis=0)
        cov = np.atleast_2d(np.cov(z - self.mean, rowvar=False))
        diag = np.diag(np.diag(cov))
        shrunk = (1 - self.config.shrinkage) * cov + self.config.shrinkage * diag
        shrunk += np.eye(len(cov)) * 1e-9 * max(1.0, float(np.trace(cov)))
        self.precision = np.linalg.pinv(shrunk)
        self.threshold = 1.0  # lets score() run; the real threshold follows from the reference scores
        ref_scores = self._distance(z)[0]
        self.threshold = float(self.config.margin * ref_scores.max()) or 1e-9
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
        m = z[0].copy() if start is None else start.copy()
        for i, row in enumerate(z):
            m += a * (row - m)
            out[i] = m
        return out, m

    def _distance(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = z - self.mean
        contrib = d * (d @ self.precision)
        return contrib.sum(axis=1), contrib

    def score(self, rows, state: StreamState | None = None) -> tuple[Scores, StreamState]:
        """Score ``rows`` (oldest first) that follow ``state`` (None: the start of a stream). Returns
        the scores and the state to pass with the next block, so a stream can be scored in pieces
        with the same result as in one go."""
        if not self.fitted:
            raise ToolInputError("the early-warning model is not fitted; fit it on a reference period first")
        x = self._rows(rows, "readings")
        state = state or StreamState()
        if not len(x):
            return Scores(np.zeros(0), np.zeros((0, len(self.sensors))), self.threshold, list(self.sensors)), state
        raw = self._raw_features(x, state.history)
        z, last = self._smooth((raw - self.center) / self.scale, state.ewma)
        score, contrib = self._distance(z)
        keep = self.config.rate_window
        hist = x if state.history is None else np.vstack([state.history, x])
        return (Scores(score, contrib, self.threshold, list(self.sensors)),
                StreamState(history=hist[-keep:].copy(), ewma=last))

    # ---- persistence (JSON, no pickle) --------------------------------------------------------
    def to_dict(self) -> dict:
        if not self.fitted:
            raise ToolInputError("cannot save an early-warning model that is not fitted")
        return {"format": FORMAT, "sensors": list(self.sensors), "config": vars(self.config).copy(),
                "reference_rows": self.reference_rows, "threshold": self.threshold,
                "center": self.center.tolist(), "scale": self.scale.tolist(), "slow": self.slow.tolist(),
                "mean": self.mean.tolist(), "precision": self.precision.tolist()}

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
        except (KeyError, TypeError, ValueError) as exc:
            raise ToolInputError(f"early-warning model is damaged: {exc}") from None
        n = len(model.sensors)
        shapes = [model.center.shape, model.scale.shape, model.slow.shape, model.mean.shape]
        if any(s != (n,) for s in shapes) or model.precision.shape != (n, n) or not math.isfinite(model.threshold):
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
