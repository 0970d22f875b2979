"""Synthetic inspection sets in the shared format (shared/evaldata/FORMAT.md, kind ``inspection``).

Five products: three textures (woven fabric, brushed metal, wood grain) and two objects (a printed
label, a leaf). Good photos vary the way real ones do — position shift, small rotation, brightness
and contrast, an uneven light, sensor noise — and defective ones add a scratch, a spot/stain, a
crack or a missing piece, with a pixel mask. Everything is deterministic for a seed.

    python -m tools.inspection.synthetic OUT_DIR [--size 512] [--seed 0]

writes one set per product (``OUT_DIR/<product>/labels.csv``); ``evals.inspection`` reads either
one set or a folder of sets.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

PRODUCTS = ("fabric", "metal", "wood", "label", "leaf")
DEFECTS = ("scratch", "spot", "crack", "missing")
OBJECTS = {"label", "leaf"}


def _cv2():
    import cv2

    return cv2


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: random values on a coarse grid, upsampled."""
    cv2 = _cv2()
    small = rng.standard_normal((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 1.5


# --- product templates (float32 RGB in [0, 1], on a canvas larger than the photo) -------------

def _fabric(rng, n):
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    p = 12.0
    cell = ((xx // p).astype(int) + (yy // p).astype(int)) % 2
    along_h = 0.55 + 0.45 * np.cos(np.pi * ((yy % (p / 2)) / (p / 2) - 0.5)) ** 2
    along_v = 0.55 + 0.45 * np.cos(np.pi * ((xx % (p / 2)) / (p / 2) - 0.5)) ** 2
    shade = np.where(cell == 0, along_h, along_v) * (1 + 0.08 * _smooth_noise(rng, n, n, 40))
    shade += 0.04 * rng.standard_normal((n, n)).astype(np.float32)
    base = np.array([0.25, 0.35, 0.6], np.float32)
    return np.clip(shade[..., None] * base * 1.3, 0, 1)


def _metal(rng, n):
    cv2 = _cv2()
    streaks = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), sigmaX=25, sigmaY=0.8)
    streaks /= streaks.std() + 1e-6
    v = 0.6 + 0.06 * streaks + 0.05 * _smooth_noise(rng, n, n, 120) + 0.01 * rng.standard_normal((n, n)).astype(np.float32)
    return np.clip(np.repeat(v[..., None], 3, axis=2) * np.array([0.97, 0.99, 1.03], np.float32), 0, 1)


def _wood(rng, n):
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    warp = 18 * _smooth_noise(rng, n, n, 90) + 0.08 * xx
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (yy + warp) / 22.0)
    cv2 = _cv2()
    fibre = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), sigmaX=12, sigmaY=0.7)
    t = np.clip(0.65 * rings ** 1.5 + 0.15 * fibre / (fibre.std() + 1e-6) + 0.2, 0, 1)
    light, dark = np.array([0.78, 0.58, 0.36], np.float32), np.array([0.5, 0.32, 0.16], np.float32)
    return light * (1 - t[..., None]) + dark * t[..., None]


def _label(rng, n):
    """A printed label on a dark conveyor belt. The layout is fixed by the product seed."""
    cv2 = _cv2()
    img = np.full((n, n, 3), 0.18, np.float32) + 0.015 * rng.standard_normal((n, n, 1)).astype(np.float32)
    inside = np.zeros((n, n), np.float32)
    c, s = n // 2, int(n * 0.2)
    cv2.rectangle(inside, (c - s, c - int(s * 0.7)), (c + s, c + int(s * 0.7)), 1.0, -1)
    img = img * (1 - inside[..., None]) + np.array([0.95, 0.94, 0.9], np.float32) * inside[..., None]
    top = c - int(s * 0.7)
    cv2.rectangle(img, (c - s, top), (c + s, top + int(s * 0.25)), (0.8, 0.15, 0.1), -1)
    cv2.circle(img, (c - int(s * 0.7), c - int(s * 0.1)), int(s * 0.18), (0.1, 0.3, 0.7), -1)
    y = c - int(s * 0.25)
    for _ in range(5):  # "text" lines
        x = c - int(s * 0.35)
        while x < c + int(s * 0.85):
            w = int(rng.integers(6, 22) * n / 768)
            cv2.rectangle(img, (x, y), (x + w, y + max(3, n // 160)), (0.15, 0.15, 0.15), -1)
            x += w + max(3, n // 150)
        y += max(8, n // 55)
    bx = c - int(s * 0.9)
    while bx < c + int(s * 0.9):  # barcode
        w = int(rng.integers(1, 4) * max(1, n // 500))
        cv2.rectangle(img, (bx, c + int(s * 0.4)), (bx + w, c + int(s * 0.62)), (0.05, 0.05, 0.05), -1)
        bx += w + int(rng.integers(1, 4) * max(1, n // 500))
    return np.clip(img, 0, 1), inside


def _leaf(rng, n):
    cv2 = _cv2()
    img = np.full((n, n, 3), (0.86, 0.84, 0.78), np.float32) + 0.01 * rng.standard_normal((n, n, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    u, v = (xx - n / 2) / (n * 0.2), (yy - n / 2) / (n * 0.11)
    inside = ((u ** 2 + (v / (1 - 0.25 * u)) ** 2) < 1).astype(np.float32)
    green = np.array([0.25, 0.55, 0.2], np.float32) * (1 + 0.1 * _smooth_noise(rng, n, n, 30))[..., None]
    img = img * (1 - inside[..., None]) + green * inside[..., None]
    veins = np.zeros((n, n), np.float32)
    cv2.line(veins, (int(n * 0.3), n // 2), (int(n * 0.7), n // 2), 1.0, max(2, n // 200))
    for k in range(-4, 5):
        x0 = int(n / 2 + k * n * 0.04)
        for sign in (-1, 1):
            cv2.line(veins, (x0, n // 2), (x0 + int(n * 0.05), n // 2 + sign * int(n * 0.08)), 0.7, max(1, n // 400))
    veins = cv2.GaussianBlur(veins, (0, 0), 1.0) * inside
    img = img * (1 - 0.35 * veins[..., None]) + 0.35 * veins[..., None] * np.array([0.7, 0.85, 0.5], np.float32)
    return np.clip(img, 0, 1), inside


TEMPLATES = {"fabric": _fabric, "metal": _metal, "wood": _wood, "label": _label, "leaf": _leaf}


def _place(template: np.ndarray, size: int, angle: float, dx: float, dy: float, interp=None) -> np.ndarray:
    """Rotate about the canvas centre, shift, and crop the central ``size`` square."""
    cv2 = _cv2()
    n = template.shape[0]
    m = cv2.getRotationMatrix2D((n / 2, n / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    m[:, 2] -= (n - size) / 2
    return cv2.warpAffine(template, m, (size, size), flags=interp if interp is not None else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def _template(product: str, size: int, product_seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = int(size * 1.6)
    out = TEMPLATES[product](np.random.default_rng(product_seed), n)
    return out if isinstance(out, tuple) else (out, np.ones((n, n), np.float32))


def _photo(rng, template: tuple[np.ndarray, np.ndarray], product: str, size: int, max_shift: float, max_angle: float):
    """One good photo of the product and its object mask (all ones for textures)."""
    template, inside = template
    angle = rng.uniform(-max_angle, max_angle)
    # textures: each photo sees another part of the material; objects move a little
    shift = max_shift if product in OBJECTS else 0.2
    dx, dy = rng.uniform(-shift, shift, 2) * size
    img = _place(template, size, angle, dx, dy)
    obj = _place(inside, size, angle, dx, dy)
    return img, obj


def _light(rng, img: np.ndarray) -> np.ndarray:
    """Brightness, contrast, an uneven light across the frame, and sensor noise."""
    h, w = img.shape[:2]
    gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-0.06, 0.06)
    gx, gy = rng.uniform(-0.08, 0.08, 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = 1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    noise = rng.uniform(0.005, 0.02) * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img * gain * ramp[..., None] + offset + noise, 0, 1)


# --- defects: each returns the modified image and a boolean mask ---------------------------------

def _pick_point(rng, obj: np.ndarray, margin: int) -> tuple[int, int]:
    h, w = obj.shape
    ys, xs = np.nonzero(obj[margin:h - margin, margin:w - margin] > 0.5)
    i = int(rng.integers(len(ys)))
    return int(xs[i] + margin), int(ys[i] + margin)


def _blend(img, alpha, color):
    return img * (1 - alpha[..., None]) + np.asarray(color, np.float32) * alpha[..., None]


def _scratch(rng, img, obj, size):
    cv2 = _cv2()
    x0, y0 = _pick_point(rng, obj, size // 6)
    length, ang = rng.uniform(0.15, 0.35) * size, rng.uniform(0, np.pi)
    bend = rng.uniform(-0.2, 0.2) * length
    t = np.linspace(-0.5, 0.5, 40)
    px = x0 + t * length * np.cos(ang) - bend * (1 - 4 * t ** 2) * np.sin(ang)
    py = y0 + t * length * np.sin(ang) + bend * (1 - 4 * t ** 2) * np.cos(ang)
    line = np.zeros(img.shape[:2], np.float32)
    pts = np.stack([px, py], 1).round().astype(np.int32)
    cv2.polylines(line, [pts], False, 1.0, max(1, int(rng.uniform(1, 3) * size / 512)), cv2.LINE_AA)
    line *= obj > 0.5
    bright = rng.random() < 0.5
    color = np.clip(img[y0, x0] + rng.uniform(0.15, 0.4) * (1 if bright else -1), 0, 1)
    alpha = cv2.GaussianBlur(line, (0, 0), 0.6) * rng.uniform(0.6, 0.9)
    return _blend(img, alpha, color), line > 0.3


def _spot(rng, img, obj, size):
    cv2 = _cv2()
    x0, y0 = _pick_point(rng, obj, size // 8)
    r = rng.uniform(0.015, 0.06) * size
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    rad = r * (1 + 0.25 * np.convolve(rng.standard_normal(48), np.ones(5) / 5, "same"))  # a ragged edge
    rad *= rng.uniform(0.6, 1.0) if rng.random() < 0.5 else 1
    pts = np.stack([x0 + rad * np.cos(ang) * rng.uniform(0.7, 1.3), y0 + rad * np.sin(ang)], 1).astype(np.int32)
    blob = np.zeros(img.shape[:2], np.float32)
    cv2.fillPoly(blob, [pts], 1.0)
    blob *= obj > 0.5
    stain = [(0.35, 0.25, 0.12), (0.1, 0.1, 0.1), (0.75, 0.7, 0.3), (0.55, 0.35, 0.3)][int(rng.integers(4))]
    alpha = cv2.GaussianBlur(blob, (0, 0), max(1.0, r / 5)) * rng.uniform(0.3, 0.7)
    return _blend(img, alpha, stain), (alpha > 0.12)


def _crack(rng, img, obj, size):
    cv2 = _cv2()
    x, y = _pick_point(rng, obj, size // 6)
    line = np.zeros(img.shape[:2], np.float32)
    heading, steps = rng.uniform(0, 2 * np.pi), int(rng.uniform(0.15, 0.3) * size / 4)
    branches = [(float(x), float(y), heading, steps)]
    while branches:
        x, y, heading, steps = branches.pop()
        pts = [(x, y)]
        for _ in range(steps):
            heading += rng.normal(0, 0.35)
            x, y = x + 4 * np.cos(heading) * size / 512 * 1.5, y + 4 * np.sin(heading) * size / 512 * 1.5
            pts.append((x, y))
            if rng.random() < 0.04 and len(branches) < 2:
                branches.append((x, y, heading + rng.choice([-0.8, 0.8]), steps // 3))
        cv2.polylines(line, [np.array(pts).round().astype(np.int32)], False, 1.0, max(1, size // 300), cv2.LINE_AA)
    line *= obj > 0.5
    alpha = cv2.GaussianBlur(line, (0, 0), 0.5) * rng.uniform(0.5, 0.9)
    return _blend(img, alpha, (0.05, 0.04, 0.03)), line > 0.3


def _missing(rng, img, obj, size, background: np.ndarray):
    """A piece gone: textures show what is under them, objects lose a chunk at their edge."""
    cv2 = _cv2()
    if obj.mean() > 0.99:
        x0, y0 = _pick_point(rng, obj, size // 6)
    else:  # a point just inside the object's edge
        edge = (cv2.morphologyEx((obj > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0)
        ys, xs = np.nonzero(edge)
        i = int(rng.integers(len(ys)))
        x0, y0 = int(xs[i]), int(ys[i])
    r = rng.uniform(0.035, 0.07) * size
    ang = np.sort(rng.uniform(0, 2 * np.pi, 9))
    pts = np.stack([x0 + r * rng.uniform(0.5, 1.2, 9) * np.cos(ang), y0 + r * rng.uniform(0.5, 1.2, 9) * np.sin(ang)], 1)
    hole = np.zeros(img.shape[:2], np.float32)
    cv2.fillPoly(hole, [pts.astype(np.int32)], 1.0)
    hole *= obj > 0.5
    return _blend(img, hole, 0) + background * hole[..., None], hole > 0.5


def _defective(rng, template, product: str, defect: str, size: int, max_shift: float, max_angle: float):
    """A photo with one defect; the mask holds only pixels the defect visibly changed. A defect
    that would mostly not show (a light scratch on white paper) is drawn again somewhere else."""
    for _ in range(20):
        img, obj = _photo(rng, template, product, size, max_shift, max_angle)
        if defect == "missing":
            under = {"label": 0.18, "leaf": (0.86, 0.84, 0.78)}.get(product, 0.08)
            out, mask = _missing(rng, img, obj, size, np.full_like(img, under))
        else:
            out, mask = {"scratch": _scratch, "spot": _spot, "crack": _crack}[defect](rng, img, obj, size)
        drawn = mask.sum()
        mask &= np.abs(out - img).max(axis=2) > 0.08
        if mask.sum() >= max(6, 40 * (size / 512) ** 2) and mask.sum() >= 0.5 * drawn:
            return out, mask
    raise RuntimeError(f"could not place a visible {defect} on {product}")


def generate(out_dir: Path, products=PRODUCTS, size: int = 512, seed: int = 0, n_reference: int = 10,
             n_good: int = 10, n_defective_per_type: int = 3, max_shift: float = 0.04,
             max_angle: float = 4.0) -> list[Path]:
    """Write one inspection set per product under ``out_dir``; return the set folders."""
    from PIL import Image

    out_dir = Path(out_dir)
    sets = []
    for product in products:
        if product not in TEMPLATES:
            raise ValueError(f"unknown product {product!r}; choose from {', '.join(PRODUCTS)}")
        folder = out_dir / product
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, PRODUCTS.index(product)])
        template = _template(product, size, int(rng.integers(2 ** 31)))
        rows = []

        def save(name, img, label, split, defect="", mask=None):
            Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(folder / "images" / f"{name}.png")
            mask_rel = ""
            if mask is not None:
                mask_rel = f"masks/{name}.png"
                Image.fromarray(mask.astype(np.uint8) * 255).save(folder / mask_rel)
            rows.append({"image": f"images/{name}.png", "label": label, "split": split,
                         "defect_type": defect, "mask": mask_rel})

        for i in range(n_reference):
            img, _ = _photo(rng, template, product, size, max_shift, max_angle)
            save(f"ref_{i:03d}", _light(rng, img), 0, "reference")
        for i in range(n_good):
            img, _ = _photo(rng, template, product, size, max_shift, max_angle)
            save(f"good_{i:03d}", _light(rng, img), 0, "test")
        for defect in DEFECTS:
            for i in range(n_defective_per_type):
                img, mask = _defective(rng, template, product, defect, size, max_shift, max_angle)
                save(f"{defect}_{i:03d}", _light(rng, img), 1, "test", defect, mask)

        with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["image", "label", "split", "defect_type", "mask"])
            writer.writeheader()
            writer.writerows(rows)
        (folder / "dataset.json").write_text(json.dumps({
            "name": f"synthetic-{product}", "kind": "inspection",
            "source": f"generated by tools.inspection.synthetic (seed {seed}, size {size}); no license restrictions",
            "note": "good photos shifted, rotated and relit; defects: " + ", ".join(DEFECTS)}, indent=1))
        sets.append(folder)
    return sets


def good_photo(product: str, size: int = 512, seed: int = 0, angle: float = 0.0, shift: tuple[float, float] = (0, 0),
               gain: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """One good photo of the product ``generate(seed=seed)`` makes, in an exact pose (degrees, shift as
    a fraction of the size) and light — for checking what the inspector tolerates. RGB uint8."""
    rng = np.random.default_rng([seed, PRODUCTS.index(product)])
    template, _ = _template(product, size, int(rng.integers(2 ** 31)))
    img = _place(template, size, angle, shift[0] * size, shift[1] * size)
    return (np.clip(img * gain + offset, 0, 1) * 255).round().astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--products", default=",".join(PRODUCTS))
    a = ap.parse_args(argv)
    for folder in generate(a.out_dir, tuple(a.products.split(",")), a.size, a.seed):
        print(folder)


if __name__ == "__main__":
    main()
