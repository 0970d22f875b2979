"""From scores over a threshold to alarms: the persistence rule and alarmed stretches.

A single row over the threshold is not an alarm: ``k`` of the last ``n`` rows must be over it, so a
spike that the smoothing did not damp enough still pages nobody. The rule is causal (each row looks
only at itself and earlier rows), as it must be when readings arrive one by one.
"""

from __future__ import annotations

import numpy as np

from tools.errors import ToolInputError


def persistent(over, k: int = 5, n: int = 10, carry: np.ndarray | None = None) -> np.ndarray:
    """Alarm per row: at least ``k`` of the last ``n`` rows (this one included) over the threshold.
    ``carry`` is the previous block's last ``n - 1`` over-flags, for scoring a stream in pieces."""
    if not 1 <= k <= n:
        raise ToolInputError(f"persistence needs 1 <= k <= n, got k={k}, n={n}")
    over = np.asarray(over, dtype=bool)
    prev = np.zeros(0, dtype=bool) if carry is None else np.asarray(carry, dtype=bool)[-(n - 1):] if n > 1 else np.zeros(0, dtype=bool)
    full = np.concatenate([prev, over]).astype(int)
    counts = np.convolve(full, np.ones(n, dtype=int))[: len(full)]
    return counts[len(prev):] >= k


def stretches(flags) -> list[tuple[int, int]]:
    """Contiguous runs of True as (first, last + 1) row indices."""
    f = np.asarray(flags, dtype=bool).astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], f, [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
