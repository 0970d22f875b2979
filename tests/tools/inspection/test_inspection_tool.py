"""The inspect_image tool through the tool framework: uploads by id, fitted products, ONNX
detectors, and failures reported as results."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.tools.inspection.conftest import rows
from tests.tools.inspection.onnx_factory import make_detector
from tools.base import PlanContext, ToolRegistry, call, describe
from tools.inspection.images import InspectionError, open_image
from tools.inspection.tool import InspectImage, ProductStore
from tools.inspection.uploads import UploadStore


@pytest.fixture(scope="module")
def setup(synthetic_root, tmp_path_factory):
    home = tmp_path_factory.mktemp("inspect-tool")
    uploads, products = UploadStore(home / "uploads"), ProductStore(home / "products")
    folder = synthetic_root / "label"
    products.fit("label", [folder / r["image"] for r in rows(folder, "reference")])
    out = np.zeros((1, 300, 6), np.float32)
    out[0, 0] = [100, 100, 300, 200, 0.8, 1]
    make_detector(home / "products" / "detectors" / "belt.onnx", out,
                  metadata={"names": "{0: 'crack', 1: 'missing_screw'}"})
    return uploads, products, InspectImage(uploads, products), folder


def _upload(uploads, path):
    return uploads.save(path.read_bytes(), path.name)


def test_good_and_defective_photos(setup):
    uploads, _, tool, folder = setup
    good = next(r for r in rows(folder, "test") if r["label"] == "0")
    bad = next(r for r in rows(folder, "test") if r["defect_type"] == "missing")
    good_id = _upload(uploads, folder / good["image"])
    res = call(tool, {"image_id": good_id, "product": "label"})
    assert res.ok and res.data["verdict"] == "good" and res.data["defects"] == []
    assert res.summary.startswith("label: GOOD")
    # a good photo's copy is the photo: no box, no heat map
    diff = np.abs(uploads.open(res.data["annotated_image_id"]).astype(int) - uploads.open(good_id).astype(int))
    assert np.percentile(diff, 99.5) <= 8

    bad_id = _upload(uploads, folder / bad["image"])
    res = call(tool, {"image_id": bad_id, "product": "label"})
    assert res.ok and res.data["verdict"] == "defective"
    assert res.data["score"] > res.data["threshold"] and res.data["mode"] == "aligned"
    x0, y0, x1, y1 = res.data["defects"][0]["box"]
    mask = open_image(folder / bad["mask"]).max(axis=2) > 127
    assert mask[y0:y1, x0:x1].any()
    assert "DEFECTIVE" in res.summary and "defect region" in res.summary
    annotated = uploads.open(res.data["annotated_image_id"]).astype(int)
    original = uploads.open(bad_id).astype(int)
    assert annotated.shape == original.shape
    # the heat map glows inside the box (not only the box's red lines), and away from it the photo is as it was
    t = max(2, round(max(original.shape[:2]) / 300)) + 1
    inner = (slice(y0 + t, y1 - t), slice(x0 + t, x1 - t))
    assert np.abs(annotated[inner] - original[inner]).sum(axis=2).max() > 60
    outside = np.ones(original.shape[:2], bool)
    outside[max(0, y0 - 40):y1 + 40, max(0, x0 - 40):x1 + 40] = False
    assert np.percentile(np.abs(annotated - original)[outside], 99) <= 8
    assert uploads.path(res.data["annotated_image_id"]).suffix == ".png"


def test_detector_product(setup):
    uploads, _, tool, folder = setup
    image_id = _upload(uploads, folder / rows(folder, "test")[0]["image"])  # 256×256 photo
    res = call(tool, {"image_id": image_id, "product": "detector:belt"})
    assert res.ok and res.data["backend"] == "detector" and res.data["verdict"] == "defective"
    assert res.data["defects"][0]["class"] == "missing_screw"
    assert res.data["defects"][0]["box"] == [40, 40, 120, 80]  # 640 → 256: ×0.4


@pytest.mark.parametrize("args,where", [
    ({"image_id": "../../etc/passwd", "product": "label"}, "image_id"),
    ({"image_id": "0" * 32, "product": "../label"}, "product"),
    ({"image_id": "0" * 32}, "product"),
])
def test_bad_arguments_become_failed_results(setup, args, where):
    res = call(setup[2], args)
    assert not res.ok and where in res.error


def test_unknown_product_and_upload(setup):
    uploads, _, tool, folder = setup
    image_id = _upload(uploads, folder / rows(folder, "test")[0]["image"])
    res = call(tool, {"image_id": image_id, "product": "pallet"})
    assert not res.ok and "unknown product 'pallet'" in res.error and "label" in res.error and "detector:belt" in res.error
    res = call(tool, {"image_id": "f" * 32, "product": "label"})
    assert not res.ok and "no uploaded image" in res.error


def test_schema_and_registry(setup):
    tool = setup[2]
    d = describe(tool)
    assert d["name"] == "inspect_image" and d["side_effects"] is False
    assert "upload id" in d["description"] and d["parameters"]["properties"]["image_id"]["pattern"]
    assert ToolRegistry([tool]).names() == ["inspect_image"]


def test_products_listed(setup):
    assert setup[1].names() == ["label", "detector:belt"]


def test_upload_store_refuses_bad_files_and_ids(tmp_path):
    store = UploadStore(tmp_path)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buf, format="GIF")
    with pytest.raises(InspectionError, match="GIF"):
        store.save(buf.getvalue(), "leaf.gif")
    assert list(tmp_path.iterdir()) == []  # nothing stored
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buf, format="JPEG")
    upload_id = store.save(buf.getvalue(), "../../leaf.jpg")
    assert store.path(upload_id).name == f"{upload_id}.jpg" and store.open(upload_id).shape == (30, 40, 3)
    assert json.loads((tmp_path / f"{upload_id}.json").read_text())["filename"] == "leaf.jpg"
    for bad in ("../" + upload_id, upload_id.upper(), upload_id + ".jpg", ""):
        with pytest.raises(InspectionError, match="32 lowercase hex"):
            store.path(bad)


def test_a_planned_inspection_needs_a_product_and_an_attached_photo(setup):
    tool, photo = setup[2], "a" * 32
    context = PlanContext(photos=[photo], products=["label", "detector:belt"])
    assert tool.check({"image_id": photo, "product": "label"}, context) is None
    assert tool.check({"image_id": photo, "product": ""}, context) == \
        "say which product the photo shows (inspection products: label, detector:belt)"
    assert "none is set up yet" in tool.check({"image_id": photo}, PlanContext(photos=[photo]))
    not_attached = tool.check({"image_id": "b" * 32, "product": "label"}, context)
    assert not_attached == "that photo was not attached to this question"
    registry = ToolRegistry([tool])
    assert registry.check("inspect_image", {"image_id": photo, "product": "label"}, context) == (
        {"image_id": photo, "product": "label"}, None)
    args, reason = registry.check("inspect_image", {"image_id": photo, "product": ""}, context)
    assert args == {"image_id": photo, "product": ""} and reason.startswith("say which product")
    assert registry.apply("inspect_image", {"image_id": photo, "product": "label"}, "Li").error.startswith(
        "inspect_image has no approval path")
