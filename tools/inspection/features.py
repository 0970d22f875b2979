"""The inspector's fixed, weight-free feature extractor and its photo alignment.

Features: light that varies slowly across the frame is divided out (flat field), each photo's
channels are standardised (undoing gain, offset and colour cast of the whole picture), then a filter bank gives every pixel intensity, two opponent-colour channels,
gradient magnitude, a difference-of-Gaussians blob response, Gabor energy at four orientations
and two wavelengths, and local contrast; these are pooled on a grid of cells, with coarse
context for intensity and colour.

Alignment: phase correlation for the translation, then ECC for a rigid motion, on small grey
images; its quality is the correlation over the overlap times the overlap's share of the frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
ALIGN_SIZE = 128  # long side of the images alignment works on


def _cv2():
    import cv2

    return cv2


@lru_cache(maxsize=4)
def gabor_bank(wavelength: float) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Quadrature pairs at 0°, 45°, 90°, 135° with a one-octave bandwidth."""
    cv2 = _cv2()
    sigma = 0.56 * wavelength
    k = int(2 * round(2.5 * sigma) + 1)
    bank = []
    for theta in np.arange(4) * np.pi / 4:
        re = cv2.getGaborKernel((k, k), sigma, theta, wavelength, 1.0, 0, ktype=cv2.CV_32F)
        im = cv2.getGaborKernel((k, k), sigma, theta, wavelength, 1.0, np.pi / 2, ktype=cv2.CV_32F)
        re -= re.mean()  # zero DC: flat regions give no energy whatever their brightness
        bank.append((re, im))
    return tuple(bank)


def pixel_features(img: np.ndarray, flat_field: float = 0) -> np.ndarray:
    """H×W×C responses of the filter bank on a float RGB image in [0, 1]. The last channel is g²
    (turned into local contrast after pooling)."""
    cv2 = _cv2()
    if flat_field:  # divide out light that varies slowly across the frame (uneven illumination)
        lum = img @ LUMA
        field = cv2.GaussianBlur(lum, (0, 0), max(img.shape[:2]) / flat_field) + 0.05
        img = img * (field.mean() / field)[..., None]
    z = (img - img.mean(axis=(0, 1))) / (img.std(axis=(0, 1)) + 0.02)
    gray = z @ LUMA
    g = (gray - gray.mean()) / (gray.std() + 1e-3)
    c1, c2 = z[..., 0] - z[..., 1], z[..., 2] - z[..., 1]
    g1 = cv2.GaussianBlur(g, (0, 0), 1.0)
    grad = cv2.magnitude(cv2.Sobel(g1, cv2.CV_32F, 1, 0), cv2.Sobel(g1, cv2.CV_32F, 0, 1))
    chans = [g1, c1, c2, grad, g1 - cv2.GaussianBlur(g, (0, 0), 3.0)]
    h, w = g.shape
    half = cv2.resize(g, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    for src, up in ((g, False), (half, True)):  # wavelength 4 px, and 8 px via the half-size image
        for re, im in gabor_bank(4.0):
            e = np.log1p(cv2.magnitude(cv2.filter2D(src, -1, re), cv2.filter2D(src, -1, im)))
            chans.append(cv2.resize(e, (w, h)) if up else e)
    chans.append(g * g)
    return np.stack(chans, axis=-1)


def cell_features(img: np.ndarray, stride: int, flat_field: float = 0) -> np.ndarray:
    """Pixel features pooled on cells of ``stride`` pixels: gh×gw×D float32."""
    cv2 = _cv2()
    px = pixel_features(img, flat_field)
    gh, gw = px.shape[0] // stride, px.shape[1] // stride

    def pool(a: np.ndarray, sigma: float) -> np.ndarray:
        return cv2.resize(cv2.GaussianBlur(a, (0, 0), sigma), (gw, gh), interpolation=cv2.INTER_AREA)

    fine = np.dstack([pool(px[..., i], stride * 0.75) for i in range(px.shape[2])])
    coarse = np.dstack([pool(px[..., i], stride * 3.0) for i in range(3)])  # grey + colour context
    fine[..., -1] = np.sqrt(np.maximum(fine[..., -1] - fine[..., 0] ** 2, 0))  # E[g²] → local sd
    return np.concatenate([fine, coarse], axis=-1).astype(np.float32)


class Aligner:
    """Brings photos into the frame of an anchor photo (a reference)."""

    def __init__(self, anchor: np.ndarray):
        self.anchor = anchor.astype(np.float32)  # standardised grey, ALIGN_SIZE on the long side

    @staticmethod
    def gray(img: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        h, w = img.shape[:2]
        f = ALIGN_SIZE / max(h, w)
        g = cv2.resize(img @ LUMA, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        g = cv2.GaussianBlur(g, (0, 0), 1.0)
        return (g - g.mean()) / (g.std() + 1e-3)

    def estimate(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        """2×3 rigid warp mapping anchor coordinates to ``gray`` coordinates, and its quality in
        [0, 1]. ECC's own score rates a warp that slides the photo almost out of the frame highly
        (a tiny overlap fits well), hence the overlap factor."""
        cv2 = _cv2()
        win = cv2.createHanningWindow(gray.shape[::-1], cv2.CV_32F)
        # copies: opencv 5.0 phaseCorrelate multiplies its inputs by the window in place
        (dx, dy), _ = cv2.phaseCorrelate(self.anchor.copy(), gray.copy(), win)
        warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        try:
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
            _, warp = cv2.findTransformECC(self.anchor, gray, warp, cv2.MOTION_EUCLIDEAN, criteria, None, 3)
        except cv2.error:  # ECC did not converge: keep the translation
            pass
        size, flags = gray.shape[::-1], cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        moved = cv2.warpAffine(gray, warp, size, flags=flags)
        valid = cv2.warpAffine(np.ones_like(gray), warp, size, flags=flags) > 0.99
        if valid.mean() < 0.5:
            return warp, 0.0
        cc = float(np.corrcoef(moved[valid], self.anchor[valid])[0, 1])
        return warp, max(cc, 0.0) * float(valid.mean())

    def to_anchor(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``img`` warped into the anchor frame, its validity mask (1 where the photo covers the
        frame), the warp at ``img``'s scale, and the alignment quality."""
        cv2 = _cv2()
        warp, quality = self.estimate(self.gray(img))
        if quality == 0.0:  # no usable overlap: compare as it is rather than judge a sliver
            warp = np.eye(2, 3, dtype=np.float32)
        warp = warp.copy()
        warp[:, 2] *= img.shape[1] / self.anchor.shape[1]  # alignment size → this image's size
        h, w = img.shape[:2]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        moved = cv2.warpAffine(img, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
        valid = cv2.warpAffine(np.ones((h, w), np.float32), warp, (w, h), flags=flags, borderValue=0)
        return moved, valid, warp, quality
