"""OCR of PDF pages that have no text layer: render with pypdfium2, read with rapidocr.

Runs inside the PDF worker process (see pdf_worker.py), never in the main process. rapidocr
ships its ONNX models in the wheel; we hand it the model files by path so it never tries its
download code (the worker also points HTTP proxies at a closed port, so a download attempt
would fail at once instead of hanging).
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import median
from typing import Any

from knowledge.loaders.pdf_clean import join_lines

# Virtual memory onnxruntime + OpenCV need to OCR a dense A4 page at 200-300 dpi, measured at
# 1.5-2.0 GB (VmPeak; resident ~1 GB). The OCR worker runs under max(pdf_memory_mb, this).
OCR_MEMORY_MB = 3072
# Longest rendered side in pixels: A4 at 200 dpi is 2339 px; larger renders only cost memory,
# detection time grows with the pixel count.
MAX_SIDE_PX = 3000
MIN_SCORE = 0.5


class OcrUnavailable(RuntimeError):
    """rapidocr, onnxruntime or the bundled models are missing."""


def model_files() -> dict[str, Path]:
    """The det/rec/cls ONNX files inside the installed rapidocr wheel."""
    try:
        import rapidocr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise OcrUnavailable(f"rapidocr is not installed ({exc}); pip install rapidocr onnxruntime") from exc
    folder = Path(rapidocr.__file__).resolve().parent / "models"
    found: dict[str, Path] = {}
    for task in ("det", "rec", "cls"):
        candidates = sorted(folder.glob(f"*_{task}_*.onnx")) or sorted(folder.glob(f"*{task}*.onnx"))
        if candidates:
            found[task] = candidates[-1]
    missing = {"det", "rec"} - found.keys()
    if missing:
        raise OcrUnavailable(f"rapidocr models missing from {folder}: {', '.join(sorted(missing))}")
    return found


def make_engine(threads: int | None = None) -> Any:
    """A RapidOCR engine on the bundled Chinese+English models, with no network access."""
    files = model_files()
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # onnxruntime / opencv missing
        raise OcrUnavailable(f"rapidocr cannot start: {exc}") from exc
    threads = threads or min(4, os.cpu_count() or 1)
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.use_cls": False,  # rendered pages are upright; the classifier only costs time
        "Global.max_side_len": MAX_SIDE_PX,
        "Det.model_path": str(files["det"]),
        "Rec.model_path": str(files["rec"]),
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if "cls" in files:
        params["Cls.model_path"] = str(files["cls"])
    return RapidOCR(params=params)


def render_page(document: Any, index: int, dpi: int) -> Any:
    """Page ``index`` (0-based) of an open pypdfium2 document as an RGB numpy array."""
    page = document[index]
    try:
        width_pt, height_pt = page.get_size()
        scale = dpi / 72.0
        longest = max(width_pt, height_pt, 1.0)
        scale = min(scale, MAX_SIDE_PX / longest)  # huge pages: cap pixels, not the page
        bitmap = page.render(scale=scale)
        try:
            return bitmap.to_numpy()[:, :, :3].copy()
        finally:
            bitmap.close()
    finally:
        page.close()


def layout_text(boxes: Any, texts: Any, scores: Any) -> str:
    """OCR boxes -> text lines top to bottom; a vertical gap larger than about one line
    height becomes a blank line (paragraph break)."""
    items = []
    for box, text, score in zip(boxes if boxes is not None else [], texts or [], scores or []):
        text = str(text).strip()
        if not text or float(score) < MIN_SCORE:
            continue
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        items.append({"top": min(ys), "bottom": max(ys), "x": min(xs), "text": text})
    if not items:
        return ""
    items.sort(key=lambda it: (it["top"] + it["bottom"]) / 2)
    lines: list[dict[str, Any]] = []
    for it in items:
        height = it["bottom"] - it["top"]
        center = (it["top"] + it["bottom"]) / 2
        last = lines[-1] if lines else None
        if last and abs(center - last["center"]) < 0.5 * min(height, last["height"]):
            last["parts"].append(it)
            last["bottom"] = max(last["bottom"], it["bottom"])
        else:
            lines.append({"top": it["top"], "bottom": it["bottom"], "center": center,
                          "height": height, "parts": [it]})
    typical = median(line["height"] for line in lines) or 1.0
    out: list[str] = []
    previous_bottom = None
    for line in lines:
        if previous_bottom is not None and line["top"] - previous_bottom > 0.8 * typical:
            out.append("")
        parts = sorted(line["parts"], key=lambda it: it["x"])
        out.append(join_lines([p["text"] for p in parts]))
        previous_bottom = line["bottom"]
    return "\n".join(out)


def ocr_image(engine: Any, image: Any) -> str:
    result = engine(image)
    return layout_text(getattr(result, "boxes", None), getattr(result, "txts", None),
                       getattr(result, "scores", None))
