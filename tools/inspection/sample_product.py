"""The sample product shipped so that the photo tab works on a fresh install.

On first start (no product learned yet) ``ensure_sample_product`` draws a printed label on a
belt (``tools.inspection.synthetic``, a fixed seed: every install gets the same product), learns
product ``sample-label`` from the good photos, and keeps a few photos to try it with — one good,
two defective — in ``<inspection root>/samples/``. A site's own product is never replaced: once
any product exists nothing is done.

    python -m tools.inspection.sample_product INSPECTION_ROOT   # what the server does on first start
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

SAMPLE_PRODUCT = "sample-label"
SEED = 14
SIZE = 320  # the inspector works at 320 px anyway: a larger photo only costs time
N_REFERENCE = 8
# The kept photos: (file name in samples/, row of the synthetic set). The defects are ones the
# fitted product flags (checked when kept); a good photo it passes.
KEEP = (("good", "good_000"), ("spot", "spot_000"), ("missing", "missing_000"))


def samples_dir(inspection_root: str | Path) -> Path:
    return Path(inspection_root) / "samples"


def sample_photos(inspection_root: str | Path) -> list[Path]:
    """The kept sample photos (good first), those that exist."""
    folder = samples_dir(inspection_root)
    return [p for p in (folder / f"{SAMPLE_PRODUCT}-{name}.png" for name, _ in KEEP) if p.is_file()]


def ensure_sample_product(inspection_root: str | Path, work_dir: str | Path,
                          echo: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """Fit ``sample-label`` and keep its sample photos when no product exists in ``inspection_root``;
    None when there was nothing to do (a product exists) or it failed: a missing sample must not
    stop the server, so a failure is logged and said, not raised. ``work_dir`` holds the synthetic
    set while fitting (a temporary folder in it, removed after)."""
    from tools.inspection.tool import ProductStore

    store = ProductStore(inspection_root)
    if store.names():
        return None
    if echo:
        echo(f"first start: learning the sample product {SAMPLE_PRODUCT!r} for the photo tab …")
    try:
        return _fit_sample(store, inspection_root, work_dir)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("the sample product was not learned: %s", exc, exc_info=True)
        if echo:
            echo(f"the sample product was not learned ({exc}); the photo tab needs a product fitted first")
        return None


def _fit_sample(store: Any, inspection_root: str | Path, work_dir: str | Path) -> dict[str, Any]:
    started = time.monotonic()
    Path(inspection_root).mkdir(parents=True, exist_ok=True)  # an unusable folder fails here, not after the fit
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="sample-product-") as tmp:
        rows, folder = _generate(Path(tmp))
        references = [folder / r["image"] for r in rows if r["split"] == "reference"]
        inspector = store.fit(SAMPLE_PRODUCT, references)
        kept = _keep(inspection_root, folder, inspector)
    seconds = time.monotonic() - started
    log.info("sample product %r learned from %d synthetic photos in %.1f s; sample photos in %s",
             SAMPLE_PRODUCT, len(references), seconds, samples_dir(inspection_root))
    return {"product": SAMPLE_PRODUCT, "references": len(references), "photos": [str(p) for p in kept],
            "threshold": round(float(inspector.threshold), 4), "seconds": round(seconds, 2)}


def _generate(out: Path) -> tuple[list[dict[str, str]], Path]:
    from tools.inspection.synthetic import generate

    folder = generate(out, products=("label",), size=SIZE, seed=SEED, n_reference=N_REFERENCE, n_good=1,
                      n_defective_per_type=1)[0]
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh)), folder


def _keep(inspection_root: str | Path, folder: Path, inspector: Any) -> list[Path]:
    """Copy the sample photos into the data home; a photo the product does not judge as its
    name says (which a fixed seed rules out, see the tests) is left out rather than mislead."""
    from tools.inspection.images import open_image

    target = samples_dir(inspection_root)
    target.mkdir(parents=True, exist_ok=True)
    kept = []
    for name, stem in KEEP:
        src = folder / "images" / f"{stem}.png"
        verdict = inspector.predict(open_image(src)).verdict
        if (verdict == "good") != (name == "good"):
            log.warning("sample photo %s judged %s: not kept", stem, verdict)
            continue
        dst = target / f"{SAMPLE_PRODUCT}-{name}.png"
        shutil.copyfile(src, dst)
        kept.append(dst)
    return kept


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fit the sample product when no product exists yet.")
    ap.add_argument("inspection_root", type=Path)
    a = ap.parse_args(argv)
    result = ensure_sample_product(a.inspection_root, a.inspection_root)
    print(result if result else f"a product exists in {a.inspection_root}: nothing done")


if __name__ == "__main__":
    main()
