"""The ONNX detector backend on tiny real ONNX models with YOLOv8, YOLOv5 and NMS-style outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tools.inspection.onnx_factory import make_detector, make_identity
from tools.inspection.images import InspectionError
from tools.inspection.onnx_detector import OnnxDetector, decode, letterbox, parse_names

ULTRALYTICS_NAMES = "{0: 'scratch', 1: 'dent', 2: 'stain'}"  # what Ultralytics writes: str(dict)


def _photo(w: int, h: int) -> np.ndarray:
    return np.full((h, w, 3), 90, np.uint8)


def test_letterbox_scales_pads_and_normalises():
    img = np.full((320, 1280, 3), 255, np.uint8)  # wide: scaled by 0.5, padded top and bottom
    x, r, (left, top) = letterbox(img, (640, 640))
    assert x.shape == (1, 3, 640, 640) and x.dtype == np.float32
    assert r == 0.5 and (left, top) == (0, 240)
    assert x[0, :, 0, 0] == pytest.approx([114 / 255] * 3)  # grey padding
    assert x[0, :, 320, 320] == pytest.approx([1.0] * 3)  # the photo, /255


def test_yolov8_output_decoded_mapped_back_and_suppressed(tmp_path):
    out = np.zeros((1, 4 + 3, 120), np.float32)  # [1, 4+nc, N]
    def put(i, box, cls, score):
        out[0, :4, i] = box
        out[0, 4 + cls, i] = score
    put(0, (320, 320, 100, 50), 1, 0.9)
    put(1, (324, 322, 100, 50), 1, 0.8)  # same class, overlaps → suppressed
    put(2, (320, 320, 100, 50), 0, 0.7)  # same place, other class → kept (class-aware NMS)
    put(3, (100, 200, 40, 40), 2, 0.6)
    put(4, (500, 500, 40, 40), 2, 0.1)  # below the confidence threshold
    model = make_detector(tmp_path / "v8.onnx", out, metadata={"names": ULTRALYTICS_NAMES, "stride": "32"})
    det = OnnxDetector(model, conf=0.25, iou=0.45)
    assert det.names == ["scratch", "dent", "stain"]
    found = det.detect(_photo(1280, 640))  # letterbox: r = 0.5, 160 px padding on top
    assert [(d.class_name, round(d.score, 2)) for d in found] == [("dent", 0.9), ("scratch", 0.7), ("stain", 0.6)]
    assert found[0].box == (540, 270, 740, 370)  # (270..370, 295..345) in the input, back through the letterbox
    assert found[2].box == (160, 40, 240, 120)


def test_yolov5_output_uses_objectness_times_class(tmp_path):
    out = np.zeros((1, 25200, 5 + 2), np.float32)  # [1, N, 5+nc], N as at 640 px
    out[0, 0] = [320, 320, 64, 64, 0.9, 0.1, 0.95]  # score 0.855, class 1
    out[0, 1] = [100, 100, 30, 30, 0.2, 0.9, 0.0]  # 0.18: dropped
    out[0, 2] = [322, 318, 64, 64, 0.8, 0.0, 0.9]  # overlaps the first, lower score: suppressed
    model = make_detector(tmp_path / "v5.onnx", out)
    (tmp_path / "v5.names.txt").write_text("crack\nhole\n", encoding="utf-8")
    found = OnnxDetector(model).detect(_photo(640, 640))
    assert len(found) == 1
    assert found[0].class_name == "hole" and found[0].score == pytest.approx(0.855, abs=1e-4)
    assert found[0].box == (288, 288, 352, 352)


def test_ultralytics_nms_export_is_not_suppressed_again(tmp_path):
    out = np.zeros((1, 300, 6), np.float32)  # [1, N, 6]: x1, y1, x2, y2, score, class
    out[0, 0] = [100, 100, 200, 200, 0.9, 1]
    out[0, 1] = [105, 105, 205, 205, 0.8, 1]  # overlapping, but the model's NMS kept it
    model = make_detector(tmp_path / "e2e.onnx", out, metadata={"names": ULTRALYTICS_NAMES})
    (tmp_path / "e2e.names.json").write_text(json.dumps({"0": "crack", "1": "hole"}), encoding="utf-8")
    found = OnnxDetector(model).detect(_photo(640, 640))
    assert [d.box for d in found] == [(100, 100, 200, 200), (105, 105, 205, 205)]
    assert {d.class_name for d in found} == {"hole"}  # the sidecar wins over the metadata


def test_yolov7_end2end_rows(tmp_path):
    out = np.array([[0, 10, 20, 110, 220, 2, 0.75], [0, 300, 300, 400, 420, 0, 0.2]], np.float32)  # [N, 7]
    model = make_detector(tmp_path / "v7.onnx", out, metadata={"names": ULTRALYTICS_NAMES})
    found = OnnxDetector(model, conf=0.3).detect(_photo(1280, 1280))  # r = 0.5, no padding
    assert [(d.class_name, d.box) for d in found] == [("stain", (20, 40, 220, 440))]


def test_normalised_coordinates_and_metadata_input_size(tmp_path):
    out = np.zeros((1, 10, 6), np.float32)
    out[0, 0] = [0.25, 0.25, 0.5, 0.5, 0.9, 0]  # fractions of the 320 px input
    model = make_detector(tmp_path / "dyn.onnx", out, input_shape=("batch", 3, "height", "width"),
                          metadata={"imgsz": "[320, 320]"})
    det = OnnxDetector(model)
    assert det.input_hw == (320, 320)
    found = det.detect(_photo(640, 640))
    assert found[0].box == (160, 160, 320, 320) and found[0].class_name == "class0"


def test_unsupported_output_is_a_clear_error(tmp_path):
    det = OnnxDetector(make_identity(tmp_path / "identity.onnx"))
    with pytest.raises(InspectionError, match="not a YOLO layout"):
        det.detect(_photo(64, 64))
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(InspectionError, match="could not be loaded"):
        OnnxDetector(tmp_path / "broken.onnx")


def test_decode_by_shape_without_a_model():
    v8 = np.zeros((1, 6, 50), np.float32)
    v8[0, :, 0] = [10, 10, 4, 4, 0.0, 0.8]
    boxes, scores, cls, nms = decode(v8)
    assert not nms and cls[0] == 1 and scores[0] == pytest.approx(0.8) and boxes[0].tolist() == [8, 8, 12, 12]
    v5 = np.zeros((1, 2000, 6), np.float32)  # one class, many rows: a raw head, not NMS output
    v5[0, 0] = [10, 10, 4, 4, 0.5, 1.0]
    boxes, scores, cls, nms = decode(v5)
    assert not nms and scores[0] == pytest.approx(0.5)


def test_parse_names_accepts_literals_only():
    assert parse_names(ULTRALYTICS_NAMES) == ["scratch", "dent", "stain"]
    assert parse_names('["a", "b"]') == ["a", "b"]
    assert parse_names({"1": "b", "0": "a"}) == ["a", "b"]
    assert parse_names("__import__('os').system('true')") is None
