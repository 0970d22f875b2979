"""``InspectionService``: photos and defect inspection, for the faces (REST API, chat page, CLI).

Results are plain JSON-ready dicts. Errors are ``tools.errors``: a refused photo or a failed
inspection is ``InspectionError`` (a ``ToolInputError``), an unknown upload id ``NotFoundError``,
too many inspections at once ``ToolBusyError``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tools.base import call
from tools.errors import NotFoundError, ToolBusyError, ToolInputError
from tools.inspection.images import InspectionError
from tools.inspection.tool import InspectImage, ProductStore
from tools.inspection.uploads import UploadStore

INSPECTIONS_AT_ONCE = 2
BUSY_RETRY_AFTER_S = 3.0


class InspectionService:
    """Uploads kept by id, and inspections of them against the site's products (at most
    ``at_once`` inspections run at the same time; one more is refused at once)."""

    def __init__(self, uploads: UploadStore, products: ProductStore, at_once: int = INSPECTIONS_AT_ONCE):
        self.uploads, self.products = uploads, products
        self._inspect = InspectImage(uploads, products)
        self._slots = threading.BoundedSemaphore(at_once)

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
                raise ToolInputError("say which product the photo shows; known: " + (", ".join(names) or "none yet"))
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
