"""Inspection evaluation on sets in the shared format (shared/evaldata/FORMAT.md, kind
``inspection``): fit the inspector on the ``reference`` split, score the ``test`` split.

A folder holding ``labels.csv`` is one set; a folder of such folders (one per product, as the
synthetic generator and MVTec-style collections are laid out) is evaluated set by set and the
AUROCs averaged over sets (a product's threshold and scale are its own, so scores of different
products are never ranked together).
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ValidationError
from tools.inspection.anomaly import InspectorConfig
from tools.inspection.combined import new_inspector
from tools.inspection.images import InspectionError, open_image

log = logging.getLogger(__name__)
PIXEL_SIDE = 256  # maps and masks are compared at most this size (keeps pixel AUROC cheap)
COLUMNS = {"image", "label", "split"}


def find_sets(dataset_dir: Path) -> list[Path]:
    dataset_dir = Path(dataset_dir)
    if (dataset_dir / "labels.csv").is_file():
        return [dataset_dir]
    sets = sorted(p for p in dataset_dir.iterdir() if (p / "labels.csv").is_file()) if dataset_dir.is_dir() else []
    if not sets:
        raise ValidationError(f"{dataset_dir} is not an inspection set: no labels.csv in it or its sub-folders (see FORMAT.md)")
    return sets


def read_labels(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = COLUMNS - set(rows[0] if rows else {})
    if missing:
        raise ValidationError(f"{folder / 'labels.csv'}: missing column(s) {', '.join(sorted(missing))}")
    return rows


def _auroc(labels: list[int] | np.ndarray, scores: list[float] | np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() == labels.max():
        return None  # undefined without both classes
    return float(roc_auc_score(labels, scores))


def _small(a: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    import cv2

    h, w = a.shape[:2]
    f = min(1.0, side / max(h, w))
    return cv2.resize(a, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def evaluate_set(folder: Path, config: InspectorConfig | None = None) -> dict[str, Any]:
    rows = read_labels(folder)
    refs = []
    for r in (r for r in rows if r["split"] == "reference"):
        try:
            refs.append(open_image(folder / r["image"]))
        except InspectionError as exc:  # a bad file is logged and skipped, never the end of the run
            log.warning("skipping reference %s: %s", r["image"], exc.user_message)
    start = time.perf_counter()
    inspector = new_inspector(config).fit(refs)
    fit_s = time.perf_counter() - start
    labels, scores, ms, pix_labels, pix_scores = [], [], [], [], []
    has_masks = any((r.get("mask") or "").strip() for r in rows if r["split"] == "test")
    for r in (r for r in rows if r["split"] == "test"):
        try:
            img = open_image(folder / r["image"])
            result = inspector.predict(img)
            mask = None
            if (r.get("mask") or "").strip():
                mask = open_image(folder / r["mask"]).max(axis=2) > 127
        except InspectionError as exc:
            log.warning("skipping test image %s: %s", r["image"], exc.user_message)
            continue
        labels.append(int(r["label"]))
        scores.append(result.score)
        ms.append(result.ms)
        if has_masks:
            if mask is None:
                mask = np.zeros(img.shape[:2], bool)  # good images: every pixel is normal
            pix_scores.append(_small(result.anomaly_map).ravel())
            pix_labels.append(_small(mask.astype(np.float32)).ravel() > 0.5)
    labels_a, scores_a = np.array(labels), np.array(scores)
    predicted = scores_a > inspector.threshold
    return {
        "image_auroc": _auroc(labels_a, scores_a),
        "pixel_auroc": _auroc(np.concatenate(pix_labels), np.concatenate(pix_scores)) if pix_labels else None,
        "ms_per_image": round(float(np.mean(ms)), 1) if ms else None,
        "images": len(labels),
        "references": len(refs),
        "mode": "aligned" if inspector.aligned else "texture",
        "threshold": round(inspector.threshold, 4),
        "false_alarm_rate": round(float(predicted[labels_a == 0].mean()), 4) if (labels_a == 0).any() else None,
        "miss_rate": round(float((~predicted[labels_a == 1]).mean()), 4) if (labels_a == 1).any() else None,
        "fit_seconds": round(fit_s, 2),
        "features": inspector.features_label,
        "memory_mb": round(inspector.memory_mb, 1),
    }


def evaluate_inspection(dataset_dir: Path, config: InspectorConfig | None = None) -> dict[str, Any]:
    """Image AUROC, pixel AUROC (None without masks), ms per image and image count; with more
    than one set, the AUROCs and rates are means over sets and ``sets`` holds each one."""
    per = {p.name: evaluate_set(p, config) for p in find_sets(Path(dataset_dir))}
    if len(per) == 1:
        return next(iter(per.values()))

    def mean(key: str) -> float | None:
        vals = [v[key] for v in per.values() if v[key] is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    total = sum(v["images"] for v in per.values())
    ms = sum((v["ms_per_image"] or 0) * v["images"] for v in per.values()) / max(total, 1)
    return {"image_auroc": mean("image_auroc"), "pixel_auroc": mean("pixel_auroc"), "ms_per_image": round(ms, 1),
            "images": total, "false_alarm_rate": mean("false_alarm_rate"), "miss_rate": mean("miss_rate"),
            "features": next(iter(per.values()))["features"], "sets": per}
