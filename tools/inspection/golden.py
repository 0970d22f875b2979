"""Golden-image inspection: compare a photo with golden photos of the same aligned view.

The second mode a plant uses, where a fixed camera sees every item in (nearly) the same place:
keep 1..N photos of good items ("goldens") and, for each new photo,

1. register it to the first golden: phase correlation for the translation, then ECC for a rigid
   motion (translation + small rotation), on small locally-normalised grey images;
2. make both lighting-free: on log grey (gain becomes an offset, gamma a scale), each pixel
   minus its local mean, divided by its local standard deviation (with a floor, so flat areas do
   not amplify sensor noise) — gain, gamma and slow light gradients cancel, edges and marks stay;
3. difference per pixel, tolerant to the registration's residual error: a pixel counts only if
   no golden pixel within ``tolerance`` pixels matches it (and the same the other way round, so
   a missing piece shows as well as an added stain); with several goldens the smallest
   difference over goldens (items vary a little; a defect differs from all of them);
4. Gaussian smoothing, image score = maximum of the map over the part both photos cover.

Threshold: the scores the goldens get against each other (leave-one-out, several goldens) and
of augmented copies of each golden (shifted, slightly rotated, relit, gamma, noise, JPEG) as a
new shot of a good item would look → max × margin. Regions: connected components of the map
above half the threshold that reach it, boxed in the photo's pixels.

Saved like fitted products: ``<name>.npz`` (goldens as uint8) + ``<name>.json`` whose ``config``
says ``"mode": "golden"`` (``ProductStore`` loads it with ``GoldenReference.load``). No pickle.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tools.inspection.images import InspectionError
from tools.inspection.product_files import paths
from tools.inspection.regions import boxed_regions

FORMAT_VERSION = 1
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
MIN_ALIGNMENT = 0.3  # below this the photo hardly overlaps or matches the golden view


@dataclass
class GoldenConfig:
    mode: str = "golden"  # marks the product file as a golden reference (ProductStore's hook reads it)
    work_size: int = 512  # long side of the working image, pixels
    align_size: int = 256  # long side of the images registration works on
    norm_sigma: float = 6.0  # local mean/std window, working pixels
    log_eps: float = 0.1  # > 0: work on log(grey + log_eps), so gain and gamma changes cancel exactly
    std_floor: float = 0.15  # local std floor (log grey): flat areas are not noise amplifiers
    tolerance: int = 1  # pixels of residual misregistration a difference must exceed
    smooth_sigma: float = 8.0  # anomaly-map smoothing, working pixels (deeppcb pixel AUROC: 2 → 0.84, 8 → 0.97)
    augments: int = 12  # augmented copies per golden for the threshold (the max of few is a noisy bound)
    margin: float = 1.5  # threshold = margin × highest calibration score
    min_region_px: int = 6  # smallest region kept, working pixels
    seed: int = 0


@dataclass
class GoldenRegion:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo's pixels
    score: float
    area: int  # pixels in the photo

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 4), "class": "anomaly", "area": self.area}


@dataclass
class GoldenInspection:
    score: float
    threshold: float
    anomaly_map: np.ndarray  # float32, the photo's size
    regions: list[GoldenRegion] = field(default_factory=list)
    alignment: float = 0.0  # registration quality 0–1 (correlation × overlap share)
    ms: float = 0.0

    @property
    def verdict(self) -> str:
        return "defective" if self.score > self.threshold else "good"

    def to_dict(self) -> dict:
        """The shape ``inspect_image`` returns for a fitted product."""
        out = {"backend": "golden", "verdict": self.verdict, "score": round(self.score, 4),
               "threshold": round(self.threshold, 4), "defects": [r.to_dict() for r in self.regions],
               "mode": "golden", "alignment": round(self.alignment, 3)}
        if self.alignment < MIN_ALIGNMENT:  # a moved camera, another product, a covered lens: say so
            out["note"] = (f"the photo does not match the golden view (alignment {self.alignment:.2f}): "
                           "check the camera position and the product before trusting the boxes")
        return out


def _cv2():
    import cv2

    return cv2


class GoldenReference:
    """``fit`` on golden photos (RGB uint8 arrays of the same view), then ``predict`` one photo."""

    def __init__(self, config: GoldenConfig | None = None):
        self.config = config or GoldenConfig()
        if self.config.mode != "golden":
            raise InspectionError(f"a golden reference has mode 'golden', not {self.config.mode!r}")
        self.work_hw: tuple[int, int] | None = None
        self.goldens: np.ndarray | None = None  # n×H×W uint8 grey, registered to golden 0
        self._norm: list[np.ndarray] = []  # their lighting-free versions (cached)
        self._anchor: np.ndarray | None = None  # golden 0 at align size
        self.threshold = float("inf")
        self.calibration: list[float] = []
        self.meta: dict = {}

    # --- image steps ---------------------------------------------------------------------------
    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        if rgb.ndim == 3 and rgb.shape[2] == 3:
            rgb = rgb.astype(np.float32) @ LUMA
        elif rgb.ndim != 2:
            raise InspectionError("golden inspection needs an RGB or grey photo")
        if min(rgb.shape[:2]) < 32:
            raise InspectionError("golden inspection needs a photo of at least 32×32 pixels")
        h, w = rgb.shape[:2]
        if self.work_hw is None:
            f = min(1.0, self.config.work_size / max(h, w))  # never upscale: nothing to gain, slower
            self.work_hw = (max(32, round(h * f)), max(32, round(w * f)))
        elif abs(np.log((w / h) / (self.work_hw[1] / self.work_hw[0]))) > 0.05:  # another camera or crop
            raise InspectionError(f"the photo is {w}×{h}, the golden view's shape is {self.work_hw[1]}:{self.work_hw[0]}: "
                                  "golden mode compares photos from the same fixed camera view")
        h, w = self.work_hw
        return cv2.resize(rgb.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) / 255.0

    def _normalise(self, g: np.ndarray) -> np.ndarray:
        cv2, s = _cv2(), self.config.norm_sigma
        if self.config.log_eps > 0:  # in log space gain is an offset and gamma a scale: both cancel below
            g = np.log(g + self.config.log_eps)
        mean = cv2.GaussianBlur(g, (0, 0), s)
        var = cv2.GaussianBlur(g * g, (0, 0), s) - mean * mean
        return (g - mean) / np.sqrt(np.maximum(var, 0) + self.config.std_floor ** 2)

    def _small(self, norm: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        h, w = norm.shape
        f = self.config.align_size / max(h, w)
        s = cv2.resize(norm, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(s, (0, 0), 1.0).astype(np.float32)

    def _register(self, small: np.ndarray) -> tuple[np.ndarray, float]:
        """2×3 rigid warp (working pixels) taking anchor coordinates to the photo's, and quality."""
        cv2 = _cv2()
        anchor = self._anchor
        win = cv2.createHanningWindow(anchor.shape[::-1], cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(anchor.copy(), small.copy(), win)  # copies: opencv 5 windows in place
        warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        try:
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
            _, warp = cv2.findTransformECC(anchor, small, warp, cv2.MOTION_EUCLIDEAN, criteria, None, 3)
        except cv2.error:  # ECC did not converge: keep the translation
            pass
        size, flags = small.shape[::-1], cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        moved = cv2.warpAffine(small, warp, size, flags=flags)
        valid = cv2.warpAffine(np.ones_like(small), warp, size, flags=flags) > 0.99
        quality = 0.0
        if valid.mean() >= 0.3:
            quality = max(0.0, float(np.corrcoef(moved[valid], anchor[valid])[0, 1])) * float(valid.mean())
        scale = self.work_hw[1] / anchor.shape[1]
        warp = warp.copy()
        warp[:, 2] *= scale
        return warp, quality

    def _warp_in(self, img: np.ndarray, warp: np.ndarray, border=0.0) -> np.ndarray:
        cv2 = _cv2()
        h, w = self.work_hw
        return cv2.warpAffine(img, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=border)

    def _difference(self, norm: np.ndarray, cover: np.ndarray) -> np.ndarray:
        """Smoothed, misregistration-tolerant difference to the closest golden, anchor frame."""
        cv2, t = _cv2(), self.config.tolerance
        kernel = np.ones((2 * t + 1, 2 * t + 1), np.uint8)
        best = None
        # a pixel is off if it lies outside the golden's local [min, max] within ±t pixels, and vice versa
        lo_p, hi_p = cv2.erode(norm, kernel), cv2.dilate(norm, kernel)
        for gold in self._norm:
            lo_g, hi_g = cv2.erode(gold, kernel), cv2.dilate(gold, kernel)
            d = np.maximum(np.maximum(norm - hi_g, lo_g - norm), np.maximum(gold - hi_p, lo_p - gold))
            best = d if best is None else np.minimum(best, d)
        best = np.maximum(best, 0) * cover
        return cv2.GaussianBlur(best, (0, 0), self.config.smooth_sigma)

    def _score_map(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(map in the anchor frame, warp, registration quality)."""
        cv2 = _cv2()
        norm = self._normalise(self._grey(rgb))
        warp, quality = self._register(self._small(norm))
        moved = self._warp_in(norm, warp)
        cover = self._warp_in(np.ones_like(norm), warp)
        cover = cv2.erode((cover > 0.99).astype(np.uint8), np.ones((2 * int(self.config.norm_sigma) + 1,) * 2, np.uint8))
        return self._difference(moved, cover.astype(np.float32)), warp, quality

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, goldens: list[np.ndarray]) -> "GoldenReference":
        if not goldens:
            raise InspectionError("golden inspection needs at least one golden photo")
        self.work_hw = None
        greys = [self._grey(g) for g in goldens]
        first = self._normalise(greys[0])
        self._anchor = self._small(first)
        registered = [greys[0]]
        for g in greys[1:]:  # later goldens are brought into golden 0's frame (edge filled from it)
            warp, quality = self._register(self._small(self._normalise(g)))
            if quality < MIN_ALIGNMENT:
                raise InspectionError(f"a golden photo does not show the same view as the first (match {quality:.2f})")
            moved = self._warp_in(g, warp, border=-1.0)
            registered.append(np.where(moved < 0, greys[0], moved))
        self.goldens = np.stack([np.clip(np.round(g * 255), 0, 255).astype(np.uint8) for g in registered])
        self._prepare()
        self.calibration = self._calibrate(goldens)
        self.threshold = max(self.calibration) * self.config.margin
        return self

    def _prepare(self) -> None:
        self._norm = [self._normalise(g.astype(np.float32) / 255.0) for g in self.goldens]
        self._anchor = self._small(self._norm[0])

    def _calibrate(self, photos: list[np.ndarray]) -> list[float]:
        rng = np.random.default_rng(self.config.seed)
        scores = []
        all_norm = self._norm
        if len(photos) > 1:  # each golden against the others
            for i, photo in enumerate(photos):
                self._norm = [n for j, n in enumerate(all_norm) if j != i]
                scores.append(float(self._score_map(photo)[0].max()))
            self._norm = all_norm
        for photo in photos:
            for _ in range(self.config.augments):
                scores.append(float(self._score_map(augment(photo, rng))[0].max()))
        return scores

    # --- prediction -----------------------------------------------------------------------------
    def predict(self, rgb: np.ndarray) -> GoldenInspection:
        cv2 = _cv2()
        start = time.perf_counter()
        smap, warp, quality = self._score_map(rgb)
        score = float(smap.max())
        # the map back into the photo's own frame, at its size
        h, w = self.work_hw
        in_photo = cv2.warpAffine(smap, warp, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        regions = self._regions(in_photo, rgb.shape[:2])
        full = cv2.resize(in_photo, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return GoldenInspection(score, self.threshold, full.astype(np.float32), regions, quality,
                                (time.perf_counter() - start) * 1000)

    def _regions(self, smap: np.ndarray, photo_hw: tuple[int, int], limit: int = 20) -> list[GoldenRegion]:
        """Components of map ≥ 0.5·threshold that reach the threshold, boxed in photo pixels."""
        return [GoldenRegion(box, score, area) for box, score, area in
                boxed_regions(smap, self.threshold, photo_hw, 0.5, self.config.min_region_px, limit)]

    # --- persistence (npz + JSON, no pickle) ----------------------------------------------------
    def save(self, stem: Path, meta: dict | None = None) -> None:
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(paths(stem)[0], goldens=self.goldens)
        info = {"format": FORMAT_VERSION, "config": asdict(self.config), "work_hw": list(self.work_hw),
                "threshold": self.threshold, "calibration": self.calibration,
                "meta": meta if meta is not None else self.meta}
        paths(stem)[1].write_text(json.dumps(info, indent=1, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, stem: Path) -> "GoldenReference":
        stem = Path(stem)
        try:
            info = json.loads(paths(stem)[1].read_text(encoding="utf-8"))
            if info.get("format") != FORMAT_VERSION:
                raise InspectionError(f"golden product {stem.name} has format {info.get('format')}, "
                                      f"this version reads {FORMAT_VERSION}: fit it again")
            self = cls(GoldenConfig(**info["config"]))
            self.work_hw = tuple(info["work_hw"])
            self.threshold = float(info["threshold"])
            self.calibration = list(info["calibration"])
            self.meta = info.get("meta") or {}
            with np.load(paths(stem)[0], allow_pickle=False) as z:
                self.goldens = z["goldens"]
            if self.goldens.dtype != np.uint8 or self.goldens.ndim != 3 or tuple(self.goldens.shape[1:]) != self.work_hw:
                raise ValueError("golden images do not match the saved working size")
        except InspectionError:
            raise
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise InspectionError(f"golden product {stem.name} could not be read: {exc}") from exc
        self._prepare()
        return self


def is_golden(stem: Path) -> bool:
    """Whether the product file ``stem.json`` holds a golden reference (its config's mode)."""
    try:
        info = json.loads(paths(Path(stem))[1].read_text(encoding="utf-8"))
        return isinstance(info, dict) and (info.get("config") or {}).get("mode") == "golden"
    except (OSError, ValueError, AttributeError):
        return False


def fit_golden_product(store, name: str, photos: list, config: GoldenConfig | None = None) -> GoldenReference:
    """Fit golden product ``name`` from golden photos (arrays, bytes or files) and save it in a
    ``ProductStore``, where ``store.get(name)`` and ``inspect_image`` then find it."""
    from tools.inspection.images import open_image

    name = store._checked(name)  # the store's own name rule (no paths, no "..")
    arrays = [p if isinstance(p, np.ndarray) else open_image(p) for p in photos]
    ref = GoldenReference(config).fit(arrays)
    ref.save(store.folder / name, meta={"product": name, "references": len(arrays), "mode": "golden"})
    return ref


def augment(rgb: np.ndarray, rng: np.random.Generator, shift: float = 0.02, angle: float = 1.0) -> np.ndarray:
    """A new shot of the same good item: shifted by up to ``shift`` of the frame, rotated by up to
    ``angle`` degrees, relit (gain, offset, gamma, a light gradient), with sensor noise and JPEG."""
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-angle, angle)), 1.0)
    m[:, 2] += rng.uniform(-shift, shift, 2) * (w, h)
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255.0
    ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * rng.uniform(-0.15, 0.15)
    out = np.clip(out * rng.uniform(0.7, 1.2) + rng.uniform(-0.08, 0.08) + ramp, 0, 1) ** rng.uniform(0.8, 1.25)
    out = np.clip(out * 255 + rng.normal(0, 2.0, out.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 95))])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else out
