"""The photo tab: take or choose a photo, pick the product, see the verdict and the annotated photo;
send a result to review (a proposed work order); teach a product from good photos (admins).

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


def taught_markdown(product: dict[str, Any], lang: str) -> str:
    """What a fitted product will flag: the threshold against the good references' scores."""
    scores = [float(x) for x in product.get("reference_scores") or []]
    lines = [t(lang, "teach.done", name=escape_md(str(product.get("name"))), n=product.get("references") or len(scores),
               threshold=float(product.get("threshold") or 0.0))]
    if scores:
        lines.append(t(lang, "teach.scores", low=min(scores), high=max(scores),
                       scores=", ".join(f"{x:.2f}" for x in scores[:50])))
    return "\n\n".join(lines)


def review_problem(result: dict[str, Any]) -> tuple[str, list[str]]:
    """The work order's problem line and evidence for an inspection result."""
    n = len(result.get("defects") or [])
    problem = (f"Photo inspection of {result.get('product')}: {str(result.get('verdict', '?')).upper()}, score "
               f"{float(result.get('score') or 0):.3f} vs threshold {float(result.get('threshold') or 0):.3f}, "
               f"{n} defect region(s). Review the annotated photo and decide.")
    evidence = [f"inspect_image: {result.get('summary') or problem}"[:500],
                f"annotated photo: upload {result.get('annotated_image_id')} (GET /api/v1/uploads/{result.get('annotated_image_id')})",
                f"photo: upload {result.get('image_id')}"]
    return problem, evidence


class InspectHandlers:
    def __init__(self, inspection: InspectionService, upload_root: str | Path | None = None,
                 work_orders: Any = None, assets: list[str] | None = None, auth: Any = None):
        self.inspection = inspection
        self.upload_root = upload_root  # None: Gradio's upload folder
        self.folder = products_folder(inspection)
        self.work_orders, self.assets, self.auth = work_orders, list(assets or []), auth

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

    def refresh_all(self, lang: str, request: gr.Request | None = None):
        """``refresh``, and the teaching section shown to those who may use it (admins, or everyone
        on an open page); the handler refuses the others too."""
        admin = self.auth is None or self.auth.allows(request, "admin")
        return *self.refresh(lang), gr.update(visible=admin)

    def _refused(self, request: Any, role: str, lang: str) -> str | None:
        if self.auth is None:
            return None
        access = self.auth.access(request, role)
        return None if access.allowed else t(lang, access.reason or "auth.admin_only")

    def _who(self, request: Any) -> str:
        principal = self.auth.principal(request) if self.auth is not None and self.auth.required else None
        return getattr(principal, "id", None) or "page"

    def teach(self, name: str | None, files: list[Any] | None, lang: str, golden: bool = False,
              request: gr.Request | None = None):
        """(report markdown, product dropdown update): fit a product from the uploaded good photos
        (``golden``: golden images of a fixed view, compared directly)."""
        lang = lang or "en"
        refused = self._refused(request, "admin", lang)
        if refused:
            return refused, gr.update()
        name = (name or "").strip()
        if not name:
            return t(lang, "teach.need_name"), gr.update()
        paths = [f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", "") for f in files or []]
        try:
            photos = [(Path(p).name, photo_bytes(uploaded(p, self.upload_root))) for p in paths]
            product = self.inspection.fit_product(name, photos, None, bool(golden))
        except Exception as exc:  # noqa: BLE001 - a refused photo or name is a message
            return error_message(exc, lang), gr.update()
        names = self.products()
        return taught_markdown(product, lang), gr.update(choices=names, value=product.get("name"))

    def send_review(self, result: dict | None, asset: str | None, lang: str, request: gr.Request | None = None) -> str:
        """A proposed (pending) work order with the verdict, score, threshold and the annotated photo."""
        lang = lang or "en"
        refused = self._refused(request, "operator", lang)
        if refused:
            return refused
        if not result or self.work_orders is None:
            return t(lang, "review.need_result")
        if not asset:
            return t(lang, "review.need_asset")
        problem, evidence = review_problem(result)
        try:
            order = self.work_orders.create_work_order(asset, problem, "high" if result.get("verdict") == "defective"
                                                       else "low", evidence, requested_by=self._who(request))
        except Exception as exc:  # noqa: BLE001
            return error_message(exc, lang)
        return t(lang, "review.sent", id=escape_md(str(order.get("id"))))

    def inspect_for_review(self, photo: str | None, product: str | None, lang: str):
        """``inspect`` for the page: also the result kept for "Send to review" and that button shown."""
        image, md, result = self._inspect(photo, product, lang)
        return image, md, result, gr.update(visible=result is not None and self.work_orders is not None), ""

    def inspect(self, photo: str | None, product: str | None, lang: str):
        """(annotated image, verdict markdown)."""
        return self._inspect(photo, product, lang)[:2]

    def _inspect(self, photo: str | None, product: str | None, lang: str):
        """(annotated image, verdict markdown, result or None)."""
        lang = lang or "en"
        if not photo:
            return None, t(lang, "insp.need_photo"), None
        if not product and not self.products():
            return None, no_products_text(lang, self.folder), None
        try:
            data = photo_bytes(uploaded(photo, self.upload_root))
            result = self.inspection.inspect_upload(data, Path(photo).name, product or None)
            annotated = self.inspection.open_photo(result["annotated_image_id"])
        except Exception as exc:  # noqa: BLE001 - a refused photo or a busy inspector is a message
            return None, error_message(exc, lang), None
        return annotated, verdict_markdown(result, lang), result


def build(inspection: InspectionService, labels: Labels, lang: gr.State, work_orders: Any = None,
          assets: list[str] | None = None, auth: Any = None) -> dict[str, Any]:
    h = InspectHandlers(inspection, work_orders=work_orders, assets=assets, auth=auth)
    names = h.products()
    private = {"api_visibility": "private"}
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
                        button.click(h.sample(path), None, [photo, product], **private)
        with gr.Column(scale=1, min_width=300):
            verdict = gr.Markdown(sample_note(names, "en") if names else no_products_text("en", h.folder),
                                  elem_id="onsite-insp-verdict")
            annotated = labels.bind(gr.Image(interactive=False, type="numpy", format="png", height=420,
                                             elem_id="onsite-insp-result", buttons=["fullscreen"]),
                                    label="insp.result")
            last = gr.State(None)  # this page's last result, for "Send to review"
            with gr.Group(visible=False, elem_id="onsite-insp-review") as review:
                asset = labels.bind(gr.Dropdown(choices=h.assets, value=h.assets[0] if h.assets else None,
                                                elem_id="onsite-insp-asset"), label="review.asset")
                send = labels.bind(gr.Button(elem_id="onsite-insp-send"), value="review.send")
            review_msg = gr.Markdown(elem_id="onsite-insp-review-msg")
    with labels.bind(gr.Accordion(open=not names, elem_id="onsite-insp-teach"), label="teach.title") as teach_box:
        labels.bind(gr.Markdown(t("en", "teach.howto")), value="teach.howto")
        with gr.Row(equal_height=False):
            name = labels.bind(gr.Textbox(max_length=64, elem_id="onsite-teach-name"), label="teach.name",
                               placeholder="teach.name_hint")
            files = labels.bind(gr.File(file_count="multiple", file_types=[".png", ".jpg", ".jpeg"], type="filepath",
                                        elem_id="onsite-teach-files"), label="teach.files")
        golden = labels.bind(gr.Checkbox(value=False, elem_id="onsite-teach-golden"), label="teach.golden")
        fit = labels.bind(gr.Button(variant="primary", elem_id="onsite-teach-fit"), value="teach.fit")
        taught = gr.Markdown(elem_id="onsite-teach-report")
    run.click(h.inspect_for_review, [photo, product, lang], [annotated, verdict, last, review, review_msg],
              concurrency_limit=2, concurrency_id="inspect", **private)
    send.click(h.send_review, [last, asset, lang], [review_msg], **private)
    fit.click(h.teach, [name, files, lang, golden], [taught, product], concurrency_limit=1, concurrency_id="teach", **private)
    return {"handlers": h, "product": product, "verdict": verdict, "teach": teach_box,
            "refresh_outputs": [product, verdict, teach_box]}
