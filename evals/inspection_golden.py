"""Golden-mode evaluation on template-vs-test inspection sets (DeepPCB style).

DeepPCB pairs every test image ``<id>_test.jpg`` with the defect-free template ``<id>_temp.jpg``
of the same board region. Golden mode is fitted on one template alone and scores:

- each defective test image whose template is in the set (label 1) against that template, its
  mask as pixel truth;
- each good test image (label 0; in DeepPCB these are templates) against itself as a new shot of
  the view: ``augment`` with another seed (shift, small rotation, relighting, noise, JPEG), because
  the set holds one photo per good view. The threshold's own augmented copies use other seeds.

With ``perturb`` (default) the defective test image goes through the same kind of augmentation
(mask warped alike), so both classes need registration and lighting invariance; without it the
test images are scored as shot (already aligned and binarised by DeepPCB). Test images with no
template in the set cannot be scored in golden mode and are counted as ``skipped``.

    python -m evals.inspection_golden /work/shared/evaldata/deeppcb --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.inspection import _auroc, _small, read_labels
from tools.inspection.golden import GoldenConfig, GoldenReference, augment
from tools.inspection.images import open_image


def _shot(rgb: np.ndarray, mask: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The same augmentation on the photo and (geometrically only) on its mask."""
    import cv2

    photo = augment(rgb, np.random.default_rng(seed))
    if mask is None or not mask.any():
        return photo, mask
    # replay the geometric part: augment draws the angle first, then the shift
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-1.0, 1.0)), 1.0)
    m[:, 2] += rng.uniform(-0.02, 0.02, 2) * (w, h)
    return photo, cv2.warpAffine(mask.astype(np.uint8) * 255, m, (w, h), flags=cv2.INTER_NEAREST) > 127


def pairs(folder: Path) -> tuple[list[tuple[str, str, str | None]], int]:
    """(template, defective test, mask) for each test image whose template is in the set; skipped count."""
    rows = read_labels(folder)
    images = {Path(r["image"]).name: r for r in rows}
    found, skipped = [], 0
    for r in rows:
        name = Path(r["image"]).name
        if r["split"] != "test" or r["label"] != "1":
            continue
        temp = name.replace("_test.", "_temp.")
        if temp == name or temp not in images:
            skipped += 1
            continue
        found.append((images[temp]["image"], r["image"], (r.get("mask") or "").strip() or None))
    return found, skipped


def _open(path: Path, side: int | None) -> np.ndarray:
    import cv2

    img = open_image(path)
    return img if not side else cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)


def evaluate_golden(folder: Path, config: GoldenConfig | None = None, perturb: bool = True, seed: int = 1000,
                    side: int | None = None) -> dict[str, Any]:
    """Golden-mode figures for a set; ``side`` resizes every image (and mask) to side×side first."""
    import cv2

    folder = Path(folder)
    found, skipped = pairs(folder)
    if not found:
        raise SystemExit(f"{folder}: no test image has a matching template (<id>_test.* with <id>_temp.*)")
    goods = [r["image"] for r in read_labels(folder) if r["split"] == "test" and r["label"] == "0"]
    # (golden, photo, label, mask): each defective test against its template, each good test image
    # (a template itself) as a new shot of its own view
    jobs = [(temp, test, 1, mask) for temp, test, mask in found] + [(g, g, 0, None) for g in goods]
    labels, scores, ms, pix_l, pix_s, verdicts, hits, fit_ms = [], [], [], [], [], [], [], []
    refs: dict[str, GoldenReference] = {}
    for i, (temp, test, label, mask_path) in enumerate(jobs):
        golden = _open(folder / temp, side)
        if temp not in refs:
            t0 = time.perf_counter()
            refs[temp] = GoldenReference(config).fit([golden])
            fit_ms.append((time.perf_counter() - t0) * 1000)
        photo = _open(folder / test, side)
        truth = _open(folder / mask_path, side).max(axis=2) > 127 if mask_path else np.zeros(photo.shape[:2], bool)
        if perturb or label == 0:  # a good shot is always a new shot: the set has one photo per good view
            photo, truth = _shot(photo, truth, seed + i)
        result = refs[temp].predict(photo)
        labels.append(label)
        scores.append(result.score)
        ms.append(result.ms)
        verdicts.append(result.verdict == "defective")
        pix_s.append(_small(result.anomaly_map).ravel())
        pix_l.append(_small(truth.astype(np.float32)).ravel() > 0.5)
        if label == 1:  # does any box overlap the true defect?
            hits.append(any(truth[y0:y1, x0:x1].any() for x0, y0, x1, y1 in (r.box for r in result.regions)))
    labels_a, pred = np.array(labels), np.array(verdicts)
    return {
        "set": folder.name, "mode": "golden", "perturbed": perturb, "defective": int(labels_a.sum()),
        "good": int((labels_a == 0).sum()), "skipped_no_template": skipped,
        "image_auroc": _auroc(labels_a, scores),
        "pixel_auroc": _auroc(np.concatenate(pix_l), np.concatenate(pix_s)),
        "false_alarm_rate": round(float(pred[labels_a == 0].mean()), 4),
        "miss_rate": round(float((~pred[labels_a == 1]).mean()), 4),
        "box_hit_rate": round(float(np.mean(hits)), 4),
        "ms_per_image": round(float(np.mean(ms)), 1),
        "ms_per_image_p95": round(float(np.percentile(ms, 95)), 1),
        "fit_ms_per_golden": round(float(np.mean(fit_ms)), 1),
        "image_size": list(golden.shape[:2][::-1]),
        "cores": os.cpu_count(), "cv2_threads": cv2.getNumThreads(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.inspection_golden", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--as-shot", action="store_true", help="score test images as they are (no shift/relighting)")
    p.add_argument("--side", type=int, help="resize images to SIDE×SIDE first (e.g. 512 for the speed target)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    out = evaluate_golden(args.folder, perturb=not args.as_shot, side=args.side)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
