"""The ``inspect_image`` tool, and the product store it reads fitted products from.

Products live in one folder: ``<name>.npz`` + ``<name>.json`` per fitted product (``Inspector``),
``detectors/<name>.onnx`` (+ optional ``<name>.names.json`` / ``.names.txt``) per ONNX detector.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, Field

from tools.base import PlanContext, ToolResult
from tools.inspection.anomaly import Inspection, Inspector, InspectorConfig
from tools.inspection.combined import CombinedInspector, is_combined, new_inspector
from tools.inspection.golden import GoldenInspection, GoldenReference, is_golden
from tools.inspection.images import InspectionError, open_image
from tools.inspection.uploads import UPLOAD_ID_PATTERN, UploadStore

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
PRODUCT_PATTERN = rf"^(detector:)?{NAME_PATTERN}$"
_NAME = re.compile(rf"^{NAME_PATTERN}$")


class ProductStore:
    """Fitted products and ONNX detectors by name; loaded once and kept while their file is unchanged."""

    def __init__(self, folder: str | Path, detector_conf: float = 0.25):
        self.folder = Path(folder)
        self.detector_conf = detector_conf
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def _checked(self, name: str) -> str:
        if not _NAME.match(name or "") or ".." in name:
            raise InspectionError("a product name is 1–64 letters, digits, '_', '-' or '.', starting with a letter or digit")
        return name

    def names(self) -> list[str]:
        products = sorted(p.stem for p in self.folder.glob("*.json") if p.with_suffix(".npz").is_file())
        detectors = sorted(f"detector:{p.stem}" for p in (self.folder / "detectors").glob("*.onnx"))
        return products + detectors

    def fit(self, name: str, images: list[np.ndarray | bytes | Path],
            config: InspectorConfig | None = None) -> Inspector | CombinedInspector:
        """Learn a product from photos of good items (arrays, bytes or files) and save it: with
        both feature sets when the CNN weights are installed (``combined.new_inspector``)."""
        arrays = [im if isinstance(im, np.ndarray) else open_image(im) for im in images]
        inspector = new_inspector(config or InspectorConfig(features="auto")).fit(arrays)
        inspector.save(self.folder / self._checked(name), meta={"product": name, "references": len(arrays)})
        return inspector

    def get(self, product: str):
        """An ``Inspector`` for a product name, an ``OnnxDetector`` for ``detector:<name>``."""
        is_detector = product.startswith("detector:")
        name = self._checked(product.split(":", 1)[1] if is_detector else product)
        path = (self.folder / "detectors" / f"{name}.onnx") if is_detector else (self.folder / f"{name}.npz")
        if not path.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise InspectionError(f"unknown product {product!r}; known: {known}")
        with self._lock:
            mtime = path.stat().st_mtime
            hit = self._cache.get(product)
            if hit and hit[0] == mtime:
                return hit[1]
            if is_detector:
                from tools.inspection.onnx_detector import OnnxDetector

                model = OnnxDetector(path, conf=self.detector_conf)
            elif is_golden(path.with_suffix("")):  # config mode "golden": a golden-image reference
                model = GoldenReference.load(path.with_suffix(""))
            elif is_combined(path.with_suffix("")):  # cnn + handcrafted (combined.py)
                model = CombinedInspector.load(path.with_suffix(""))
            else:
                model = Inspector.load(path.with_suffix(""))
            self._cache[product] = (mtime, model)
            return model


def annotate(rgb: np.ndarray, boxes: list[tuple[tuple[int, int, int, int], str]],
             heat: np.ndarray | None = None) -> np.ndarray:
    """A copy of the photo with each box drawn in red and its label above it. ``heat``: the anomaly
    map in units of the threshold (photo-sized), shown as a heat map where it passes 0.75 of the
    threshold, so that a good photo stays clean and a defect glows more the more it exceeds."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    if heat is not None and heat.shape == rgb.shape[:2]:
        level = np.clip((heat - 0.75) / 1.25, 0, 1)  # 0.75 (where regions begin) → clear, 2× → full colour
        colour = cv2.applyColorMap((255 * level).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
        alpha = (0.6 * level)[..., None]
        out = np.ascontiguousarray((out * (1 - alpha) + colour * alpha).astype(np.uint8))
    t = max(2, round(max(rgb.shape[:2]) / 300))
    scale = max(0.4, max(rgb.shape[:2]) / 1200)
    for (x0, y0, x1, y1), label in boxes:
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (255, 0, 0), t)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y0 - 4 if y0 - th - 6 >= 0 else min(out.shape[0] - 2, y1 + th + 4)
        cv2.rectangle(out, (x0, ty - th - 3), (x0 + tw + 4, ty + 3), (255, 0, 0), -1)
        cv2.putText(out, label, (x0 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class InspectImage:
    """Inspect a photo of a product for defects such as scratches, spots, cracks or missing pieces.
    Give the upload id of the photo and the product to compare it with: the name of a product
    learned from photos of good items, or "detector:<name>" for the site's ONNX defect detector.
    Returns the verdict (good / defective), the anomaly score and its threshold, the defect regions
    as boxes in image pixels with scores, and the upload id of an annotated copy for display."""

    name: ClassVar[str] = "inspect_image"
    side_effects: ClassVar[bool] = False

    class Args(BaseModel):
        image_id: str = Field(..., pattern=UPLOAD_ID_PATTERN, description="Upload id of the photo (32 hex characters).")
        product: str = Field(..., pattern=PRODUCT_PATTERN,
                             description='A fitted product name, or "detector:<name>" for an ONNX detector.')

    def __init__(self, uploads: UploadStore, products: ProductStore):
        self.uploads = uploads
        self.products = products

    def check(self, args: dict, context: PlanContext) -> str | None:
        """A planned inspection needs a product and a photo attached to this question."""
        if not args.get("product"):
            known = ", ".join(context.products) or "none is set up yet"
            return f"say which product the photo shows (inspection products: {known})"
        image_id = args.get("image_id")
        if isinstance(image_id, str) and image_id not in context.photos:
            return "that photo was not attached to this question"
        return None

    def run(self, args: "InspectImage.Args") -> ToolResult:
        shown = args.model_dump()
        try:
            rgb = self.uploads.open(args.image_id)
            model = self.products.get(args.product)
            heat = None
            if isinstance(model, (Inspector, CombinedInspector, GoldenReference)):
                result = model.predict(rgb)
                data = result.to_dict() if isinstance(result, GoldenInspection) else self._reference(result)
                heat = result.anomaly_map / result.threshold
            else:
                data = self._detector(model, rgb)
        except InspectionError as exc:
            return ToolResult(self.name, shown, False, summary="inspection failed", error=exc.user_message)
        labels = [(tuple(d["box"]), f"{d['class']} {d['score']:.2f}") for d in data["defects"]]
        data["annotated_image_id"] = self.uploads.save_array(annotate(rgb, labels, heat), f"{args.image_id}-annotated.png")
        data.update(product=args.product, image_size=[int(rgb.shape[1]), int(rgb.shape[0])])
        n = len(data["defects"])
        found = f"{n} defect region{'s' if n != 1 else ''}" if n else "no defect regions"
        summary = (f"{args.product}: {data['verdict'].upper()} — score {data['score']:.2f} vs threshold "
                   f"{data['threshold']:.2f}, {found}")
        return ToolResult(self.name, shown, True, data=data, summary=summary)

    @staticmethod
    def _reference(result: Inspection) -> dict:
        defects = [{"box": list(r.box), "score": round(r.score, 4), "class": "anomaly", "area": r.area}
                   for r in result.regions]
        return {"backend": "reference", "verdict": result.verdict, "score": round(result.score, 4),
                "threshold": round(result.threshold, 4), "defects": defects,
                "mode": "aligned" if result.aligned else "texture",
                "alignment": None if result.alignment is None else round(result.alignment, 3)}

    def _detector(self, model, rgb: np.ndarray) -> dict:
        detections = model.detect(rgb)
        score = max((d.score for d in detections), default=0.0)
        return {"backend": "detector", "verdict": "defective" if detections else "good", "score": round(score, 4),
                "threshold": round(model.conf, 4), "defects": [d.to_dict() for d in detections]}
