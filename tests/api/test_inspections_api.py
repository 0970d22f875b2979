"""/api/v1/uploads and /api/v1/inspections: multipart uploads, the verdict with defect boxes and the
annotated image, and the limits (type, bytes, pixels)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tools.inspection.synthetic import generate

from .conftest import OPERATOR


@pytest.fixture(scope="module")
def metal_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("metal")
    generate(root, products=("metal",), size=192, seed=2, n_reference=6, n_good=1, n_defective_per_type=1)
    return root / "metal"


@pytest.fixture(scope="module")
def fitted_folder(metal_set, tmp_path_factory):
    from tools.inspection.tool import ProductStore

    folder = tmp_path_factory.mktemp("products")
    ProductStore(folder).fit("metal", sorted((metal_set / "images").glob("ref_*.png")))
    return folder


@pytest.fixture
def c(app_client, make_api_service, fitted_folder):
    import shutil

    service = make_api_service(simulate_hours=0)
    shutil.copytree(fitted_folder, service.parts.products.folder, dirs_exist_ok=True)
    return app_client(service)


def png(path_or_array) -> bytes:
    if isinstance(path_or_array, np.ndarray):
        buf = io.BytesIO()
        Image.fromarray(path_or_array).save(buf, format="PNG")
        return buf.getvalue()
    return path_or_array.read_bytes()


def test_defective_photo_gets_boxes_and_an_annotated_image(c, metal_set):
    photo = png(metal_set / "images" / "scratch_000.png")
    r = c.post("/api/v1/inspections", files={"file": ("scratch.png", photo, "image/png")},
               data={"product": "metal"}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["verdict"] == "defective" and data["defects"] and data["score"] > data["threshold"]
    assert len(data["defects"][0]["box"]) == 4 and data["defects"][0]["class"] == "anomaly"
    assert data["image_size"] == [192, 192]
    img = c.get(f"/api/v1/uploads/{data['annotated_image_id']}", headers=OPERATOR)
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.headers["x-content-type-options"] == "nosniff" and img.content.startswith(b"\x89PNG")
    assert c.get(f"/api/v1/uploads/{data['annotated_image_id']}").status_code == 401


def test_good_photo_and_the_only_product_by_default(c, metal_set):
    r = c.post("/api/v1/inspections", files={"file": ("good.png", png(metal_set / "images" / "good_000.png"))},
               headers=OPERATOR)
    assert r.status_code == 200 and r.json()["data"]["verdict"] == "good"
    assert c.get("/api/v1/inspections/products", headers=OPERATOR).json()["data"] == ["metal"]


def test_uploaded_photo_can_be_asked_about(c, metal_set):
    r = c.post("/api/v1/uploads", files={"file": ("p.png", png(metal_set / "images" / "good_000.png"))},
               headers=OPERATOR)
    assert r.status_code == 201
    up = r.json()["data"]
    assert len(up["image_id"]) == 32 and up["width"] == 192
    answer = c.post("/api/v1/chat", json={"question": "Is this part OK?", "photos": [up["image_id"]]},
                    headers=OPERATOR).json()["data"]
    assert any(t["tool"] == "inspect_image" for t in answer["tool_calls"])


@pytest.mark.parametrize("name, content, status, words", [
    ("x.gif", b"GIF89a" + b"\0" * 64, 400, "GIF"),
    ("x.png", b"", 400, "empty"),
    ("x.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 400, "damaged"),
    ("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", 400, "SVG"),
])
def test_bad_photos_are_refused(c, name, content, status, words):
    r = c.post("/api/v1/inspections", files={"file": (name, content)}, data={"product": "metal"}, headers=OPERATOR)
    assert r.status_code == status and words in r.json()["msg"]


def test_pixel_bomb_is_refused_from_the_header(c):
    buf = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buf, format="PNG")  # 48 MP in a few kB
    r = c.post("/api/v1/uploads", files={"file": ("bomb.png", buf.getvalue())}, headers=OPERATOR)
    assert r.status_code == 400 and "MP" in r.json()["msg"]


def test_upload_over_the_body_limit_is_413(app_client):
    c = app_client(simulate_hours=0, api={"max_upload_mb": 0.01})
    r = c.post("/api/v1/uploads", files={"file": ("big.png", b"\x89PNG" + b"0" * 20_000)}, headers=OPERATOR)
    assert r.status_code == 413 and r.json()["data"]["error"] == "body_too_large"


def test_unknown_product_and_missing_file(c, metal_set):
    photo = png(metal_set / "images" / "good_000.png")
    r = c.post("/api/v1/inspections", files={"file": ("p.png", photo)}, data={"product": "bolts"}, headers=OPERATOR)
    assert r.status_code == 400 and "unknown product" in r.json()["msg"]
    assert c.post("/api/v1/inspections", data={"product": "metal"}, headers=OPERATOR).status_code == 422
    assert c.get("/api/v1/uploads/" + "0" * 32, headers=OPERATOR).status_code == 404
