"""Defect regions from an anomaly map, shared by the learned inspector and golden-image mode:
connected components of the map above ``low × threshold`` that reach the threshold, boxed in
the photo's pixels, strongest first."""

from __future__ import annotations

import numpy as np


def boxed_regions(smap: np.ndarray, threshold: float, photo_hw: tuple[int, int], low: float, min_px: int,
                  limit: int = 20) -> list[tuple[tuple[int, int, int, int], float, int]]:
    """[(box x0 y0 x1 y1, peak score, area in photo pixels)] of the regions that reach ``threshold``."""
    import cv2

    if smap.max() <= threshold:
        return []
    n, labels, stats, _ = cv2.connectedComponentsWithStats((smap >= low * threshold).astype(np.uint8), 8)
    peaks = np.zeros(n, np.float32)
    hot = smap > threshold
    np.maximum.at(peaks, labels[hot], smap[hot])
    sy, sx = photo_hw[0] / smap.shape[0], photo_hw[1] / smap.shape[1]
    out = []
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if peaks[k] > threshold and area >= min_px:
            box = (int(x * sx), int(y * sy), min(photo_hw[1], int(np.ceil((x + w) * sx))),
                   min(photo_hw[0], int(np.ceil((y + h) * sy))))
            out.append((box, float(peaks[k]), int(area * sx * sy)))
    return sorted(out, key=lambda r: -r[1])[:limit]
