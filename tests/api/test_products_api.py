"""/api/v1/products: teach a product from good photos (files or upload ids), see its threshold and
what it flags, list / show / delete it; bad photos and names refused, nothing half-written."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tools.inspection.synthetic import generate

from .conftest import ADMIN, OPERATOR


@pytest.fixture(scope="module")
def metal_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("metal")
    generate(root, products=("metal",), size=128, seed=3, n_reference=4, n_good=1, n_defective_per_type=1)
    return root / "metal"


@pytest.fixture
def c(app_client, make_api_service):
    service = make_api_service(simulate_hours=0)
    client = app_client(service)
    client.products_folder = service.parts.products.folder
    return client


def refs(metal_set):
    return [("files", (p.name, p.read_bytes(), "image/png")) for p in sorted((metal_set / "images").glob("ref_*.png"))]


def test_teach_a_product_then_inspect_list_show_and_delete(c, metal_set):
    r = c.post("/api/v1/products", data={"name": "metal"}, files=refs(metal_set), headers=ADMIN)
    assert r.status_code == 201, r.text
    product = r.json()["data"]
    assert product["name"] == "metal" and product["references"] == 4 and product["kind"] == "reference"
    assert len(product["reference_scores"]) == 4 and product["flagged_references"] == []
    assert all(s < product["threshold"] for s in product["reference_scores"])
    names = [p["name"] for p in c.get("/api/v1/products", headers=OPERATOR).json()["data"]]
    assert "metal" in names
    assert c.get("/api/v1/products/metal", headers=OPERATOR).json()["data"]["threshold"] == product["threshold"]
    photo = (metal_set / "images" / "good_000.png").read_bytes()
    r = c.post("/api/v1/inspections", files={"file": ("g.png", photo)}, data={"product": "metal"}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["data"]["threshold"] == product["threshold"]
    assert c.delete("/api/v1/products/metal", headers=OPERATOR).status_code == 403  # admin only
    assert c.delete("/api/v1/products/metal", headers=ADMIN).json()["data"] == {"name": "metal", "deleted": True}
    assert c.get("/api/v1/products/metal", headers=OPERATOR).status_code == 404
    assert c.delete("/api/v1/products/metal", headers=ADMIN).status_code == 404


def test_teach_from_upload_ids(c, metal_set):
    ids = [c.post("/api/v1/uploads", files={"file": f[1]}, headers=OPERATOR).json()["data"]["image_id"]
           for f in refs(metal_set)[:3]]
    r = c.post("/api/v1/products", data={"name": "from-ids", "upload_ids": ids}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["references"] == 3


def test_only_an_admin_teaches(c, metal_set):
    r = c.post("/api/v1/products", data={"name": "metal"}, files=refs(metal_set), headers=OPERATOR)
    assert r.status_code == 403


def test_a_bad_photo_is_named_and_nothing_is_written(c, metal_set):
    files = refs(metal_set)[:3] + [("files", ("notes.png", b"this is not an image", "image/png"))]
    r = c.post("/api/v1/products", data={"name": "metal"}, files=files, headers=ADMIN)
    assert r.status_code == 400, r.text
    message = r.json()["msg"]
    assert "photo 4 (notes.png) was refused" in message
    assert r.json()["data"] == {"error": "photo_refused", "photo": 4, "filename": "notes.png"}
    assert not list(c.products_folder.glob("metal.*")) and not list(c.products_folder.glob(".fit-*"))


def test_too_few_photos_mixed_sizes_and_bad_names_are_refused(c, metal_set):
    r = c.post("/api/v1/products", data={"name": "metal"}, files=refs(metal_set)[:2], headers=ADMIN)
    assert r.status_code == 400 and "3 to 200 photos" in r.json()["msg"]
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 96, 3), 128, np.uint8)).save(buf, format="PNG")
    files = refs(metal_set)[:3] + [("files", ("small.png", buf.getvalue(), "image/png"))]
    r = c.post("/api/v1/products", data={"name": "metal"}, files=files, headers=ADMIN)
    assert r.status_code == 400 and "same size" in r.json()["msg"]
    for bad in ("../etc", "-x", "a b", "x" * 65):
        r = c.post("/api/v1/products", data={"name": bad}, files=refs(metal_set), headers=ADMIN)
        assert r.status_code == 422, (bad, r.text)
    assert c.get("/api/v1/products/..%2Fetc", headers=OPERATOR).status_code in (404, 422)


def test_refit_failure_keeps_the_old_product(c, metal_set):
    assert c.post("/api/v1/products", data={"name": "metal"}, files=refs(metal_set), headers=ADMIN).status_code == 201
    before = (c.products_folder / "metal.json").read_bytes()
    files = refs(metal_set)[:3] + [("files", ("bad.jpg", b"\xff\xd8\xff broken", "image/jpeg"))]
    assert c.post("/api/v1/products", data={"name": "metal"}, files=files, headers=ADMIN).status_code == 400
    assert (c.products_folder / "metal.json").read_bytes() == before


def test_the_routes_are_documented(c):
    paths = c.get("/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/products"]) and {"get", "delete"} <= set(paths["/api/v1/products/{name}"])
    assert "429" in paths["/api/v1/products"]["post"]["responses"]


def test_fit_in_the_background_and_follow_the_job(c, metal_set):
    import time

    r = c.post("/api/v1/products?wait=false", data={"name": "bg"}, files=refs(metal_set), headers=ADMIN)
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["state"] in ("running", "done") and job["references"] == 4
    for _ in range(300):
        job = c.get(f"/api/v1/products/jobs/{job['id']}", headers=ADMIN).json()["data"]
        if job["state"] != "running":
            break
        time.sleep(0.1)
    assert job["state"] == "done" and job["result"]["name"] == "bg" and job["result"]["references"] == 4
    bad = refs(metal_set)[:3] + [("files", ("x.png", b"nope", "image/png"))]
    r = c.post("/api/v1/products?wait=false", data={"name": "bg2"}, files=bad, headers=ADMIN)
    assert r.status_code == 400 and r.json()["data"]["error"] == "photo_refused"  # checked before the job starts
    assert c.get("/api/v1/products/jobs/fit-000000000000", headers=ADMIN).status_code == 404



def test_a_dotted_name_keeps_its_version_suffix(c, metal_set):
    # "m.v2" must not be stored as "m" (Path.with_suffix would cut the name at its dot)
    for name in ("m", "m.v2"):
        r = c.post("/api/v1/products", data={"name": name}, files=refs(metal_set)[:3], headers=ADMIN)
        assert r.status_code == 201 and r.json()["data"]["name"] == name, r.text
    names = {p["name"] for p in c.get("/api/v1/products", headers=ADMIN).json()["data"]}
    assert {"m", "m.v2"} <= names
    assert sorted(p.name for p in c.products_folder.glob("m*")) == ["m.json", "m.npz", "m.v2.json", "m.v2.npz"]
    assert c.delete("/api/v1/products/m.v2", headers=ADMIN).status_code == 200
    assert c.get("/api/v1/products/m", headers=ADMIN).json()["data"]["name"] == "m"


@pytest.fixture(scope="module")
def label_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("label")
    generate(root, products=("label",), size=256, seed=4, n_reference=2, n_good=1, n_defective_per_type=1)
    return root / "label"


def test_a_golden_product_from_one_photo_of_a_fixed_view(c, label_set):
    golden = (label_set / "images" / "ref_000.png").read_bytes()
    r = c.post("/api/v1/products", data={"name": "label-gold", "mode": "golden"},
               files=[("files", ("g.png", golden, "image/png"))], headers=ADMIN)
    assert r.status_code == 201, r.text
    product = r.json()["data"]
    assert product["kind"] == "golden" and product["references"] == 1
    verdicts = {}
    for kind in ("good", "missing"):
        photo = next((label_set / "images").glob(f"{kind}_*.png")).read_bytes()
        r = c.post("/api/v1/inspections", files={"file": ("p.png", photo)}, data={"product": "label-gold"}, headers=OPERATOR)
        assert r.status_code == 200, r.text
        verdicts[kind] = r.json()["data"]
    assert verdicts["good"]["verdict"] == "good" and verdicts["missing"]["verdict"] == "defective"
    assert verdicts["missing"]["mode"] == "golden" and verdicts["missing"]["defects"]
    # a learned product still needs 3 photos; a wrong mode is a 422 naming the field
    r = c.post("/api/v1/products", data={"name": "one"}, files=[("files", ("g.png", golden, "image/png"))], headers=ADMIN)
    assert r.status_code == 400 and "3 to 200" in r.json()["msg"]
    r = c.post("/api/v1/products", data={"name": "x", "mode": "gold"}, files=[("files", ("g.png", golden, "image/png"))],
               headers=ADMIN)
    assert r.status_code == 422 and "mode" in r.text
