"""Time left until a sensor crosses a limit, at its current rate, with the uncertainty said.

"VT-101 reaches its 4.5 mm/s alarm in about 5 days (3–8 days) at the current rate."

- The readings of a recent window are reduced to medians per bucket (an hour by default): robust to
  spikes, and 1 Hz data costs no more than a reading a minute.
- A straight line and a parabola (wear accelerates: a bearing's vibration grows faster as it goes)
  are fitted to the bucket medians; the parabola is kept only when it explains the data clearly
  better (BIC), so a noisy flat signal is not extrapolated into a steep curve.
- The crossing is where the fitted curve first reaches the limit after now, within ``horizon``.
- The range comes from a moving-block bootstrap of the residuals (neighbouring buckets are
  correlated: day/night cycles, the pump's duty): the crossing time of each refit, its 10th and
  90th percentiles. A refit that never reaches the limit within the horizon counts as "later".

Wear grows while a machine runs: the curves are fitted against *active* time (gaps in the
readings longer than a few usual intervals — the pump stopped and the caller left its idle readings
out, or the sensor was silent — do not count), and the active time still needed is turned into
clock time with the window's active share (a pump running 8 h a day needs three days of clock
time for one day of running). A sensor read all the time is unaffected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from tools.errors import ToolInputError

DAY_S = 86_400.0
MODELS = ("linear", "quadratic")
MIN_WEIGHT = 0.25
GAP_FACTOR = 5  # a gap longer than this many usual intervals is idle time (see _active_seconds)


@dataclass
class Forecast:
    limit: float
    side: str  # "high": the value is rising towards it; "low": falling
    level: float  # the fitted value now
    rate_per_day: float  # the fitted slope now, units per day
    model: str  # "linear" | "quadratic"
    eta_s: float | None  # seconds until the crossing; 0 = already beyond; None = not within the horizon
    eta_low_s: float | None  # the range (10th–90th percentile); None high end = may not reach it in the horizon
    eta_high_s: float | None
    horizon_s: float
    buckets: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def message(self, sensor: str, limit_name: str = "limit", unit: str = "") -> str:
        what = f"{sensor} {'reaches' if self.side == 'high' else 'falls to'} its {_num(self.limit)}{_unit(unit)} {limit_name}"
        if self.eta_s == 0:
            return f"{sensor} is already {'above' if self.side == 'high' else 'below'} its {_num(self.limit)}{_unit(unit)} {limit_name}"
        if self.eta_s is None:
            return (f"{sensor} is not expected to reach its {_num(self.limit)}{_unit(unit)} {limit_name} within "
                    f"{_span(self.horizon_s)} at the current rate ({self.rate_per_day:+.3g}{_unit(unit)} per day)")
        rng = _range(self.eta_low_s or 0.0, self.eta_high_s, self.horizon_s)
        return f"{what} in about {_span(self.eta_s)}{f' ({rng})' if rng != _span(self.eta_s) else ''} at the current rate"


def forecast_crossing(ts_ms: np.ndarray, values: np.ndarray, limit: float, side: str = "high",
                      now_ms: int | None = None, bucket_s: float = 3600, horizon_s: float = 30 * DAY_S,
                      min_buckets: int = 12, draws: int = 200, seed: int = 0) -> Forecast | None:
    """The forecast for one sensor's recent readings, or None when there are too few to fit
    (fewer than ``min_buckets`` buckets with readings)."""
    if side not in ("high", "low"):
        raise ToolInputError(f"side must be 'high' or 'low', not {side!r}")
    ts = np.asarray(ts_ms, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if ts.shape != v.shape or ts.ndim != 1:
        raise ToolInputError("timestamps and values must be two 1-D arrays of the same length")
    good = np.isfinite(ts) & np.isfinite(v)
    ts, v = ts[good], v[good]
    if len(ts) == 0:
        return None
    order = np.argsort(ts, kind="stable")
    ts, v = ts[order], v[order]
    now = float(ts[-1] if now_ms is None else max(now_ms, ts[-1]))
    sign = 1.0 if side == "high" else -1.0  # work on a rising signal towards a high limit
    active, duty = _active_seconds(ts, now)
    t, y = _buckets(active - active[-1], sign * v, bucket_s)  # t ≤ 0: active seconds before now
    if len(t) < min_buckets:
        return None
    target = sign * limit
    x = t / DAY_S
    horizon_d = horizon_s * duty / DAY_S
    fits = {m: _fit(x, y, m) for m in MODELS}
    weights = _weights(x, y, fits)
    model = max(weights, key=weights.get)
    level, rate = float(fits[model][0]), float(fits[model][1])  # at x = 0 (now): value and slope per day
    if level >= target:
        eta = low = high = 0.0
    else:
        # model uncertainty (is the wear accelerating?) and noise: bootstrap draws of each model,
        # as many from each as its weight says; NaN = not within the horizon
        etas = np.concatenate([_bootstrap(x, y, fits[m], m, target, horizon_d, max(1, round(draws * w)), seed)
                               for m, w in weights.items()])
        ranked = np.sort(np.where(np.isnan(etas), np.inf, etas))
        mid, lo, hi = (float(np.percentile(ranked, q, method="nearest")) for q in (50, 10, 90))
        eta, low, high = (None if not np.isfinite(v) else v for v in (mid, lo, hi))
    to_s = (lambda d: None if d is None else d * DAY_S / duty)  # active time ahead → clock time
    return Forecast(limit=float(limit), side=side, level=sign * level, rate_per_day=sign * rate, model=model,
                    eta_s=to_s(eta), eta_low_s=to_s(low), eta_high_s=to_s(high), horizon_s=float(horizon_s),
                    buckets=len(t))


def _active_seconds(ts: np.ndarray, now: float) -> tuple[np.ndarray, float]:
    """Seconds of activity up to each reading, and the active share of the window's clock time.
    A gap of more than ``GAP_FACTOR`` usual intervals is time the machine was not running (or the
    caller left its idle readings out): wear does not grow then, so it counts as one interval."""
    dt = np.diff(ts) / 1000.0
    usual = float(np.median(dt)) if len(dt) else 60.0
    steps = np.where(dt <= GAP_FACTOR * usual, dt, usual)
    active = np.concatenate([[0.0], np.cumsum(steps)])
    span = max((now - ts[0]) / 1000.0, active[-1], 1.0)
    return active, max(active[-1] / span, 1e-3)


def _buckets(t: np.ndarray, y: np.ndarray, bucket_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Median time and value per bucket that has readings."""
    key = np.floor(t / bucket_s).astype(np.int64)
    order = np.argsort(key, kind="stable")
    key, t, y = key[order], t[order], y[order]
    cuts = np.flatnonzero(np.diff(key)) + 1
    return (np.array([np.median(p) for p in np.split(t, cuts)]),
            np.array([np.median(p) for p in np.split(y, cuts)]))


def _design(x: np.ndarray, model: str) -> np.ndarray:
    cols = [np.ones_like(x), x] + ([x * x] if model == "quadratic" else [])
    return np.stack(cols, axis=1)


def _fit(x: np.ndarray, y: np.ndarray, model: str) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(_design(x, model), y, rcond=None)
    return coef


def _weights(x: np.ndarray, y: np.ndarray, fits: dict[str, np.ndarray]) -> dict[str, float]:
    """Each model's share by BIC (Akaike-style weights), each kept at least ``MIN_WEIGHT``: a
    bearing's wear may be about to accelerate even when the window does not prove it yet."""
    n, bic = len(x), {}
    for model, coef in fits.items():
        rss = float(((y - _design(x, model) @ coef) ** 2).sum()) + 1e-12
        bic[model] = n * math.log(rss / n) + len(coef) * math.log(n)
    best = min(bic.values())
    raw = {m: math.exp(-(b - best) / 2) for m, b in bic.items()}
    total = sum(raw.values())
    w = {m: max(MIN_WEIGHT, r / total) for m, r in raw.items()}
    return {m: v / sum(w.values()) for m, v in w.items()}


def _crossing(coef: np.ndarray, target: float, horizon_d: float) -> float | None:
    """First x in (0, horizon] where a + b x (+ c x²) reaches ``target``; None if it does not."""
    a, b = coef[0] - target, coef[1]
    c = coef[2] if len(coef) > 2 else 0.0
    if a >= 0:
        return 0.0
    if abs(c) < 1e-15:
        roots = [-a / b] if b > 0 else []
    else:
        disc = b * b - 4 * c * a
        roots = [] if disc < 0 else [(-b - math.sqrt(disc)) / (2 * c), (-b + math.sqrt(disc)) / (2 * c)]
    ahead = sorted(r for r in roots if 0 < r <= horizon_d)
    return ahead[0] if ahead else None


def _bootstrap(x: np.ndarray, y: np.ndarray, coef: np.ndarray, model: str, target: float,
               horizon_d: float, draws: int, seed: int) -> np.ndarray:
    """Crossing times of refits on moving-block resampled residuals (NaN: not within the horizon)."""
    rng = np.random.default_rng(seed)
    fitted = _design(x, model) @ coef
    resid = y - fitted
    n = len(x)
    block = max(2, int(round(n ** (1 / 3) * 2)))
    starts = np.arange(max(1, n - block + 1))
    out = np.full(draws, np.nan)
    for i in range(draws):
        idx = np.concatenate([np.arange(s, s + block) for s in rng.choice(starts, n // block + 1)])[:n]
        idx = np.minimum(idx, n - 1)
        coef = _fit(x, fitted + resid[idx], model)
        eta = _crossing(coef, target, horizon_d)
        if eta is not None:
            out[i] = eta
    return out


def _span(seconds: float) -> str:
    h = seconds / 3600
    if h < 1:
        return f"{max(1, round(seconds / 60))} min"
    if h < 72:
        return f"{round(h)} h"
    return f"{round(h / 24)} days"


def _range(low_s: float, high_s: float | None, horizon_s: float) -> str:
    """"30–41 h", "3–8 days", "20 h – 4 days", "2 days – more than 30 days"."""
    if high_s is None:
        return f"{_span(low_s)} – more than {_span(horizon_s)}"
    lo, hi = _span(low_s), _span(high_s)
    if lo == hi:
        return lo
    unit_lo, unit_hi = lo.split()[-1], hi.split()[-1]
    return f"{lo.split()[0]}–{hi}" if unit_lo == unit_hi else f"{lo} – {hi}"


def _num(x: float) -> str:
    return f"{x:g}"


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""
