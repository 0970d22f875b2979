"""The photo tab: take or choose a photo, pick the product, see the verdict and the annotated photo.

On a fresh install the server learns a sample product (``tools.inspection.sample_product``); its
sample photos are offered here as buttons, so the tab gives a result on first start. The
photos are copies in Gradio's upload folder: the data home is never served to the page,
and the photo check accepts only files from that folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.services import InspectionService
from ui.chat import error_message, escape_md
from ui.i18n import TEXT, Labels, t
from tools.inspection.sample_product import SAMPLE_PRODUCT, sample_photos, samples_dir
from ui.photos import page_copy, photo_bytes, uploaded

log = logging.getLogger(__name__)
MAX_DEFECTS_LISTED = 12


def verdict_markdown(result: dict[str, Any], lang: str) -> str:
    """The verdict in large type, then each defect region with its box and score."""
    defects = list(result.get("defects") or [])
    score, threshold = float(result.get("score") or 0.0), float(result.get("threshold") or 0.0)
    key = "insp.bad" if result.get("verdict") == "defective" else "insp.good"
    lines = [t(lang, key, score=score, threshold=threshold, n=len(defects))]
    for d in defects[:MAX_DEFECTS_LISTED]:
        box = list(d.get("box") or [0, 0, 0, 0]) + [0, 0, 0, 0]
        cls = str(d.get("class") or "defect")
        cls = t(lang, f"insp.cls.{cls}") if f"insp.cls.{cls}" in TEXT else cls  # a detector's own class names as they are
        lines.append(t(lang, "insp.defect", cls=escape_md(cls), x0=box[0], y0=box[1],
                       x1=box[2], y1=box[3], score=float(d.get("score") or 0.0)))
    if result.get("product"):
        lines.append(f"_{escape_md(result['product'])}_")
    return "\n".join(lines)


def products_folder(inspection: Any) -> Path | None:
    """Where the inspection service keeps its products (None for a service that does not say)."""
    folder = getattr(getattr(inspection, "products", None), "folder", None)
    return Path(folder) if folder else None


def no_products_text(lang: str, folder: Path | None) -> str:
    """What to do when no product exists: the sample product comes back on the next start."""
    where = str(folder) if folder else "<data home>/inspection"
    return t(lang, "insp.no_products", product=SAMPLE_PRODUCT, folder=escape_md(where))


def sample_note(names: list[str], lang: str) -> str:
    """A line saying the only product is the sample one (so nobody mistakes it for theirs)."""
    return t(lang, "insp.sample_note", product=SAMPLE_PRODUCT) if names == [SAMPLE_PRODUCT] else ""


class InspectHandlers:
    def __init__(self, inspection: InspectionService, upload_root: str | Path | None = None):
        self.inspection = inspection
        self.upload_root = upload_root  # None: Gradio's upload folder
        self.folder = products_folder(inspection)

    def examples(self) -> list[tuple[str, str]]:
        """(kind, page copy of the photo) per sample photo of the sample product, when it exists."""
        if self.folder is None or SAMPLE_PRODUCT not in self.products():
            return []
        out = []
        for p in sample_photos(self.folder):
            try:
                out.append((p.stem.removeprefix(SAMPLE_PRODUCT + "-"), str(page_copy(p, self.upload_root))))
            except OSError as exc:
                log.warning("sample photo %s not offered: %s", p, exc)
        return out

    def products(self) -> list[str]:
        try:
            return list(self.inspection.list_products())
        except Exception as exc:  # noqa: BLE001
            log.warning("products not listed: %s", exc)
            return []

    def sample(self, path: str):
        """The click handler of one sample photo: it goes into the photo box, its product is
        picked. The copy is made again if the upload folder was cleaned since the page was built."""
        def pick():
            if not Path(path).is_file() and self.folder is not None:
                page_copy(samples_dir(self.folder) / Path(path).name, self.upload_root)
            return path, SAMPLE_PRODUCT
        return pick

    def refresh(self, lang: str):
        names = self.products()
        note = sample_note(names, lang or "en") if names else no_products_text(lang or "en", self.folder)
        return gr.update(choices=names, value=names[0] if names else None), note

    def inspect(self, photo: str | None, product: str | None, lang: str):
        """(annotated image, verdict markdown)."""
        lang = lang or "en"
        if not photo:
            return None, t(lang, "insp.need_photo")
        if not product and not self.products():
            return None, no_products_text(lang, self.folder)
        try:
            data = photo_bytes(uploaded(photo, self.upload_root))
            result = self.inspection.inspect_upload(data, Path(photo).name, product or None)
            annotated = self.inspection.open_photo(result["annotated_image_id"])
        except Exception as exc:  # noqa: BLE001 - a refused photo or a busy inspector is a message
            return None, error_message(exc, lang)
        return annotated, verdict_markdown(result, lang)


def build(inspection: InspectionService, labels: Labels, lang: gr.State) -> dict[str, Any]:
    h = InspectHandlers(inspection)
    names = h.products()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            photo = labels.bind(gr.Image(sources=["upload", "webcam"], type="filepath", format="png", height=380,
                                         image_mode=None,  # Gradio then keeps the file as sent: no decode here
                                         elem_id="onsite-insp-photo", webcam_options=gr.WebcamOptions(
                                             mirror=False, constraints={"video": {"facingMode": "environment"}})),
                                label="insp.photo")
            product = labels.bind(gr.Dropdown(choices=names, value=names[0] if names else None,
                                              elem_id="onsite-insp-product"), label="insp.product")
            run = labels.bind(gr.Button(variant="primary", size="lg", elem_id="onsite-insp-run"), value="insp.run")
            examples = h.examples()
            if examples:  # buttons, not gr.Examples: its file URLs miss the /ui/ mount path
                labels.bind(gr.Markdown("#### " + t("en", "insp.examples"), elem_id="onsite-insp-examples-title"),
                            value=lambda lg: "#### " + t(lg, "insp.examples"))
                with gr.Row(elem_id="onsite-insp-examples"):
                    for kind, path in examples:
                        button = labels.bind(gr.Button(size="sm", min_width=90, elem_id=f"onsite-insp-sample-{kind}"),
                                             value=f"insp.sample.{kind}")
                        button.click(h.sample(path), None, [photo, product], api_visibility="private")
        with gr.Column(scale=1, min_width=300):
            verdict = gr.Markdown(sample_note(names, "en") if names else no_products_text("en", h.folder),
                                  elem_id="onsite-insp-verdict")
            annotated = labels.bind(gr.Image(interactive=False, type="numpy", format="png", height=420,
                                             elem_id="onsite-insp-result", buttons=["fullscreen"]),
                                    label="insp.result")
    run.click(h.inspect, [photo, product, lang], [annotated, verdict], api_visibility="private",
              concurrency_limit=2, concurrency_id="inspect")
    return {"handlers": h, "product": product, "verdict": verdict}
