"""A site-supplied ONNX defect detector (YOLO family), run with onnxruntime on the CPU.

Preprocessing is the Ultralytics letterbox: resize keeping the aspect ratio into the model's input
(640 by default), pad with grey 114, RGB, /255, NCHW float32. The first output is decoded by shape:

- ``[1, 4+nc, N]`` — YOLOv8 / YOLO11: cx, cy, w, h, then class scores (no objectness), transposed;
- ``[1, N, 5+nc]`` — YOLOv5 / YOLOv7: cx, cy, w, h, objectness, class scores (score = obj × cls);
- ``[1, N, 6]`` — exports with NMS built in (Ultralytics ``nms=True`` / end-to-end):
  x1, y1, x2, y2, score, class;
- ``[N, 7]`` or ``[1, N, 7]`` — YOLOv7 ``--end2end`` ONNX NMS: batch, x1, y1, x2, y2, class, score.

6/7 columns with at most ``MAX_NMS_ROWS`` rows are taken as NMS output; raw YOLO heads have
thousands of rows. ``layout=`` overrides the guess. Boxes are mapped back through the letterbox
to the photo's pixels, then class-aware NMS (``cv2.dnn.NMSBoxesBatched``) for raw heads.

Class names: a sidecar ``<model>.names.json`` (a list, or a map id → name) or ``<model>.names.txt``
(one name per line) wins; otherwise the ``names`` metadata Ultralytics writes
(``"{0: 'scratch', 1: 'dent'}"``); otherwise ``class<i>``.
"""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.inspection.images import InspectionError

log = logging.getLogger(__name__)
MAX_NMS_ROWS = 1000
LAYOUTS = ("auto", "yolov8", "yolov5", "nms6", "nms7")


@dataclass
class Detection:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo's pixels
    score: float
    class_id: int
    class_name: str

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 4), "class_id": self.class_id, "class": self.class_name}


def parse_names(value) -> list[str] | None:
    """Names from a list, a {id: name} map, or their text (Ultralytics writes ``str(dict)``)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)  # literals only: never evaluates code
            except (ValueError, SyntaxError):
                return None
    if isinstance(value, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in value.items())
        except (TypeError, ValueError):
            return None
        names = [f"class{i}" for i in range(items[-1][0] + 1)] if items else []
        for i, v in items:
            if i >= 0:
                names[i] = v
        return names
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return None


def sidecar_names(model_path: Path) -> list[str] | None:
    base = Path(model_path).with_suffix("")
    js, txt = Path(f"{base}.names.json"), Path(f"{base}.names.txt")
    if js.is_file():
        data = json.loads(js.read_text(encoding="utf-8"))
        names = parse_names(data.get("names") if isinstance(data, dict) and "names" in data else data)
        if names is None:
            raise InspectionError(f"{js.name}: expected a list of class names or a map id → name")
        return names
    if txt.is_file():
        return [ln.strip() for ln in txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return None


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """NCHW float32 input, the scale and the (left, top) padding used."""
    import cv2

    h, w = rgb.shape[:2]
    th, tw = size
    r = min(th / h, tw / w)
    nw, nh = round(w * r), round(h * r)
    left, top = round((tw - nw) / 2 - 0.1), round((th - nh) / 2 - 0.1)
    canvas = np.full((th, tw, 3), 114, np.uint8)
    canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else rgb
    return (canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0), r, (left, top)


def decode(output: np.ndarray, nc: int | None = None, layout: str = "auto"):
    """Raw output → (boxes x1y1x2y2 [N,4] in model-input pixels, scores [N], class ids [N], nms_done)."""
    a = np.asarray(output, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise InspectionError(f"detector output of shape {list(np.shape(output))} is not a YOLO layout "
                              f"([1, 4+nc, N], [1, N, 5+nc], [1, N, 6] or [N, 7])")
    rows, cols = a.shape
    if layout == "auto":
        if cols in (6, 7) and rows <= MAX_NMS_ROWS:
            layout = "nms6" if cols == 6 else "nms7"
        elif rows < cols:
            layout = "yolov8"
        elif nc is not None and cols == 4 + nc:
            layout = "yolov8t"  # already transposed
        else:
            layout = "yolov5"
    if layout in ("nms6", "nms7"):
        if layout == "nms6":
            boxes, scores, cls = a[:, 0:4], a[:, 4], a[:, 5]
        else:
            boxes, scores, cls = a[:, 1:5], a[:, 6], a[:, 5]
        return boxes.copy(), scores.copy(), cls.astype(np.int64), True
    if layout == "yolov8":
        a = a.T
    if layout in ("yolov8", "yolov8t"):
        if a.shape[1] < 5:
            raise InspectionError(f"detector output has {a.shape[1]} values per box; YOLOv8 needs 4 + classes")
        cls_scores = a[:, 4:]
    else:
        if a.shape[1] < 6:
            raise InspectionError(f"detector output has {a.shape[1]} values per box; YOLOv5 needs 5 + classes")
        cls_scores = a[:, 5:] * a[:, 4:5]
    cls = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(a)), cls]
    cx, cy, w, h = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, scores, cls.astype(np.int64), False


class OnnxDetector:
    def __init__(self, path: str | Path, conf: float = 0.25, iou: float = 0.45, layout: str = "auto",
                 threads: int | None = None, max_det: int = 300):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise InspectionError("the ONNX detector needs onnxruntime: pip install 'onnxruntime>=1.18'") from exc
        if layout not in LAYOUTS:
            raise InspectionError(f"layout must be one of {', '.join(LAYOUTS)}")
        self.path, self.conf, self.iou, self.layout, self.max_det = Path(path), conf, iou, layout, max_det
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InspectionError(f"detector {self.path.name} could not be loaded: {exc}") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        self.input_hw = self._input_size(inp.shape, meta)
        self.names = sidecar_names(self.path) or parse_names(meta.get("names", "")) or []

    @staticmethod
    def _input_size(shape, meta: dict) -> tuple[int, int]:
        if len(shape) == 4 and all(isinstance(s, int) and s > 0 for s in shape[2:]):
            return int(shape[2]), int(shape[3])
        try:
            imgsz = ast.literal_eval(meta.get("imgsz", ""))
            imgsz = [imgsz, imgsz] if isinstance(imgsz, int) else list(imgsz)
            return int(imgsz[0]), int(imgsz[1])
        except (ValueError, SyntaxError, TypeError, IndexError):
            return 640, 640

    def name_of(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else f"class{class_id}"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        x, r, (left, top) = letterbox(rgb, self.input_hw)
        out = self.session.run(None, {self.input_name: x.astype(self.input_dtype)})[0]
        nc = len(self.names) or None
        boxes, scores, cls, nms_done = decode(out, nc, self.layout)
        keep = scores >= self.conf
        boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
        if len(boxes) and float(np.abs(boxes).max()) <= 1.5:  # normalised coordinates: to input pixels
            boxes = boxes * np.array([self.input_hw[1], self.input_hw[0]] * 2, np.float32)
        if not nms_done and len(boxes):
            order = np.argsort(-scores)[:30000]
            boxes, scores, cls = boxes[order], scores[order], cls[order]
            xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).tolist()
            idx = cv2.dnn.NMSBoxesBatched(xywh, scores.tolist(), cls.tolist(), self.conf, self.iou)
            idx = np.asarray(idx, dtype=np.int64).reshape(-1)
            boxes, scores, cls = boxes[idx], scores[idx], cls[idx]
        h, w = rgb.shape[:2]
        boxes = (boxes - np.array([left, top, left, top], np.float32)) / r  # undo the letterbox
        boxes = np.clip(boxes, 0, [w, h, w, h])
        order = np.argsort(-scores)[: self.max_det]
        return [Detection(tuple(int(round(v)) for v in boxes[i]), float(scores[i]), int(cls[i]), self.name_of(int(cls[i])))
                for i in order if boxes[i, 2] > boxes[i, 0] and boxes[i, 3] > boxes[i, 1]]
