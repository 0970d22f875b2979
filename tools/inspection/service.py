"""``InspectionService``: photos and defect inspection, for the faces (REST API, chat page, CLI).

Results are plain JSON-ready dicts. Errors are ``tools.errors``: a refused photo or a failed
inspection is ``InspectionError`` (a ``ToolInputError``), an unknown upload id ``NotFoundError``,
too many inspections at once ``ToolBusyError``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tools.base import call
from tools.errors import NotFoundError, ToolBusyError, ToolInputError
from tools.inspection.golden import GoldenReference, fit_golden_product
from tools.inspection.images import InspectionError, open_image
from tools.inspection.tool import NAME_PATTERN, InspectImage, ProductStore
from tools.inspection.uploads import UploadStore

INSPECTIONS_AT_ONCE = 2
BUSY_RETRY_AFTER_S = 3.0
MIN_REFERENCES, MAX_REFERENCES = 3, 200  # fitting is synchronous: 200 photos bound its time
MAX_GOLDENS = 20  # golden photos are kept whole and each new photo is compared with every one
_NAME = re.compile(rf"^{NAME_PATTERN}$")


class InspectionService:
    """Uploads kept by id, and inspections of them against the site's products (at most
    ``at_once`` inspections run at the same time; one more is refused at once)."""

    def __init__(self, uploads: UploadStore, products: ProductStore, at_once: int = INSPECTIONS_AT_ONCE):
        self.uploads, self.products = uploads, products
        self._inspect = InspectImage(uploads, products)
        self._slots = threading.BoundedSemaphore(at_once)
        self._fitting = threading.Lock()  # one fit at a time: it uses a core for seconds to a minute
        self._jobs: dict[str, dict[str, Any]] = {}

    def save_photo(self, data: bytes, filename: str = "") -> dict[str, Any]:
        """Check and keep a photo (PNG/JPEG within the byte and pixel limits); returns its id,
        to pass as ``photos`` to ``ask`` or to ``inspect_upload``'s result."""
        image_id = self.uploads.save(data, filename)
        info = self.uploads.info(image_id)
        return {"image_id": image_id, "width": info.get("width"), "height": info.get("height"),
                "bytes": info.get("bytes")}

    def photo_path(self, image_id: str) -> Path:
        """The stored file of an upload id (``NotFoundError`` when unknown or malformed)."""
        try:
            return self.uploads.path(image_id)
        except InspectionError as exc:
            raise NotFoundError(exc.user_message) from None

    def open_photo(self, image_id: str) -> Any:
        """A stored photo (e.g. an annotated copy) as an RGB pixel array, safely decoded."""
        self.photo_path(image_id)  # unknown → NotFoundError
        return self.uploads.open(image_id)

    def list_products(self) -> list[str]:
        """Products photos can be inspected against (fitted products and ``detector:<name>``)."""
        return self.products.names()

    def inspect_upload(self, data: bytes, filename: str = "", product: str | None = None) -> dict[str, Any]:
        """Store a photo and inspect it: verdict, score / threshold, defect boxes and the id of
        an annotated copy. ``product`` may be omitted when the site has exactly one."""
        if not product:
            names = self.products.names()
            if len(names) != 1:
                if not names:
                    raise ToolInputError("no product has been learned yet: teach one from 3 or more photos of good "
                                         "items (photo tab, POST /api/v1/products or `onsite inspect fit NAME PHOTOS`)")
                raise ToolInputError("say which product the photo shows; known: " + ", ".join(names))
            product = names[0]
        if not self._slots.acquire(blocking=False):
            raise ToolBusyError("inspections are busy; try again in a few seconds", retry_after_s=BUSY_RETRY_AFTER_S)
        try:
            image_id = self.uploads.save(data, filename)
            result = call(self._inspect, {"image_id": image_id, "product": product})
        finally:
            self._slots.release()
        if not result.ok:
            raise InspectionError(result.error or "the inspection failed")
        return {"image_id": image_id, "summary": result.summary, **result.data}

    # --- teaching products ---------------------------------------------------------------------
    def fit_product(self, name: str, photos: list[tuple[str, bytes]] | None = None,
                    upload_ids: list[str] | None = None, golden: bool = False) -> dict[str, Any]:
        """Learn (or re-learn) product ``name`` from photos of good items (``(filename, bytes)``
        and/or upload ids); returns ``describe_product``. A refused photo names which one and why.
        ``golden``: the photos are golden images of one fixed camera view (1 or more), and new
        photos are compared with them (golden.py) instead of a learned model.
        Fitted into a temporary folder and moved in when done: a failure leaves the product as it was."""
        return self._fit(name, self._references(name, photos, upload_ids, golden), golden)

    def start_fit_product(self, name: str, photos: list[tuple[str, bytes]] | None = None,
                          upload_ids: list[str] | None = None, golden: bool = False) -> dict[str, Any]:
        """``fit_product`` in the background: the photos are checked now (a refusal raises at once),
        the fit runs in a thread; follow it with ``get_fit_job``. Jobs are kept while the server runs."""
        arrays = self._references(name, photos, upload_ids, golden)
        self._claim()  # held by the job's thread until it ends: a second start is refused at once
        job = {"id": "fit-" + secrets.token_hex(6), "product": name, "state": "running", "references": len(arrays),
               "created": time.time(), "finished": None, "error": None, "result": None}
        self._jobs[job["id"]] = job

        def work() -> None:
            try:
                job["result"] = self._write(name, arrays, golden)
                job["state"] = "done"
            except Exception as exc:  # noqa: BLE001 - the job reports it; nothing was written
                job["state"], job["error"] = "failed", getattr(exc, "user_message", None) or str(exc)
            finally:
                job["finished"] = time.time()
                self._fitting.release()

        threading.Thread(target=work, name=f"onsite-{job['id']}", daemon=True).start()
        return dict(job)

    def get_fit_job(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no fitting job {job_id!r} (jobs are kept while the server runs)")
        return dict(job)

    def _references(self, name: str, photos: list[tuple[str, bytes]] | None, upload_ids: list[str] | None,
                    golden: bool = False) -> list:
        name = _checked_name(name)
        photos, upload_ids = list(photos or []), list(upload_ids or [])
        total = len(photos) + len(upload_ids)
        if golden and not 1 <= total <= MAX_GOLDENS:
            raise ToolInputError(f"a golden product needs 1 to {MAX_GOLDENS} golden photos of the fixed view, got {total}")
        if not golden and not MIN_REFERENCES <= total <= MAX_REFERENCES:
            raise ToolInputError(f"teaching a product needs {MIN_REFERENCES} to {MAX_REFERENCES} photos of good "
                                 f"items (5–20 recommended), got {total}")
        arrays = []
        for i, (filename, data) in enumerate(photos, 1):
            arrays.append(_reference(i, Path(filename or "unnamed").name, lambda: open_image(data)))
        for i, upload_id in enumerate(upload_ids, len(photos) + 1):
            arrays.append(_reference(i, f"upload {str(upload_id)[:40]}", lambda: self.uploads.open(upload_id)))
        sizes = {a.shape[:2] for a in arrays}
        if len(sizes) > 1:
            raise ToolInputError("the photos of a product must all have the same size (one camera, one view); got "
                                 + ", ".join(f"{w}×{h}" for h, w in sorted(sizes)))
        return arrays

    def _claim(self) -> None:
        if not self._fitting.acquire(blocking=False):
            raise ToolBusyError("another product is being fitted; try again when it is done", retry_after_s=10.0)

    def _fit(self, name: str, arrays: list, golden: bool = False) -> dict[str, Any]:
        self._claim()
        try:
            return self._write(name, arrays, golden)
        finally:
            self._fitting.release()

    def _write(self, name: str, arrays: list, golden: bool = False) -> dict[str, Any]:
        """Fit into a temporary folder, then move the files in (the JSON last: a product is listed
        once both files exist), so a failed fit leaves the product as it was."""
        folder = self.products.folder
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".fit-"))
        try:
            if golden:
                fit_golden_product(ProductStore(tmp), name, arrays)
            else:
                ProductStore(tmp).fit(name, arrays)
            for f in sorted(tmp.glob(f"{name}.*"), key=lambda p: p.suffix == ".json"):
                os.replace(f, folder / f.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.describe_product(name)

    def describe_product(self, name: str) -> dict[str, Any]:
        """A product: references, threshold, and what it flags (each reference's leave-one-out
        score against the threshold: a good item scoring like these passes)."""
        if name.startswith("detector:"):
            model = self._get(name)
            return {"name": name, "kind": "detector", "threshold": round(float(model.conf), 4)}
        model = self._get(_checked_name(name))
        meta = getattr(model, "meta", None) or {}
        threshold = float(model.threshold)
        npz = self.products.folder / f"{name}.npz"
        files = {"bytes": npz.stat().st_size if npz.is_file() else None,
                 "fitted_at": npz.stat().st_mtime if npz.is_file() else None}
        if isinstance(model, GoldenReference):  # compared with golden photos of one fixed view
            calibration = [float(x) for x in model.calibration]
            return {"name": name, "kind": "golden", "mode": "golden", "references": len(model.goldens),
                    "threshold": round(threshold, 4), "reference_scores": [], "flagged_references": [],
                    "highest_reference_score": round(max(calibration), 4) if calibration else None,
                    "flags": f"differences from the golden view scoring above {threshold:.3f} (the goldens and "
                             f"their shifted, relit copies score up to {max(calibration, default=0.0):.3f})",
                    **files}
        loo = [float(x) for x in getattr(model, "loo_scores", [])]
        n = int(meta.get("references") or len(loo))
        scores = loo[:n] if len(loo) >= n else loo  # further entries are the references' JPEG copies
        combined = getattr(model, "features", None) == "combined"
        return {"name": name, "kind": "reference", "references": n, "threshold": round(threshold, 4),
                "mode": "aligned" if getattr(model, "aligned", False) else "texture",
                "features": getattr(model, "features_label", None),
                "units": "score / threshold of each feature set, the larger" if combined else "distance",
                "reference_scores": [round(x, 4) for x in scores],
                "highest_reference_score": round(max(loo), 4) if loo else None,
                "flagged_references": [i + 1 for i, x in enumerate(scores) if x > threshold],
                "flags": f"photos scoring above {threshold:.3f}; the {n} good references score "
                         f"{min(scores):.3f}–{max(scores):.3f}" if scores else f"photos scoring above {threshold:.3f}",
                **files}

    def list_product_details(self) -> list[dict[str, Any]]:
        return [self.describe_product(n) for n in self.products.names()]

    def delete_product(self, name: str) -> dict[str, Any]:
        """Forget a fitted product (the sample one too; it is learned again only when none is left)."""
        if name.startswith("detector:"):
            raise ToolInputError("ONNX detectors are files the site places in inspection/detectors; remove the file")
        name = _checked_name(name)
        folder = self.products.folder
        if not (folder / f"{name}.npz").is_file():
            raise NotFoundError(f"unknown product {name!r}; known: " + (", ".join(self.products.names()) or "none yet"))
        for suffix in (".json", ".npz"):  # exact names ("a.*" would match product "a.b"); unlisted first
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
        return {"name": name, "deleted": True}

    def _get(self, name: str):
        try:
            return self.products.get(name)
        except InspectionError as exc:
            if "unknown product" in exc.user_message:
                raise NotFoundError(exc.user_message) from None
            raise


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ToolInputError("a product name is 1–64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    return name


def _reference(n: int, name: str, load) -> Any:
    """A reference photo decoded, or the refusal naming it: ``photo_refused`` with ``photo`` (1-based)
    and ``filename`` in the API's error data."""
    try:
        return load()
    except InspectionError as exc:
        refused = InspectionError(f"photo {n} ({name}) was refused: {exc.user_message}")
        refused.error_kind, refused.error_data = "photo_refused", {"photo": n, "filename": name}
        raise refused from None
