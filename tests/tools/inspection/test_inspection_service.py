"""InspectionService: photos kept by id, inspections with the verdict and an annotated copy, the
product chosen when there is only one, and the refusals (unknown photo or product, bad bytes,
too many inspections at once)."""

from __future__ import annotations

import shutil

import pytest

from tests.tools.inspection.conftest import rows
from tools.errors import NotFoundError, ToolBusyError, ToolInputError
from tools.inspection.images import InspectionError
from tools.inspection.service import InspectionService
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore


@pytest.fixture(scope="module")
def fitted_folder(synthetic_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("service-products")
    label = synthetic_root / "label"
    ProductStore(folder).fit("label", [label / r["image"] for r in rows(label, "reference")])
    return folder


@pytest.fixture
def service(fitted_folder, tmp_path):
    shutil.copytree(fitted_folder, tmp_path / "products")
    return InspectionService(UploadStore(tmp_path / "uploads"), ProductStore(tmp_path / "products"))


@pytest.fixture(scope="module")
def photos(synthetic_root):
    folder = synthetic_root / "label"
    test = rows(folder, "test")
    good = next(r for r in test if r["label"] == "0")
    bad = next(r for r in test if r["defect_type"] == "missing")
    return (folder / good["image"]).read_bytes(), (folder / bad["image"]).read_bytes()


def _stored(service: InspectionService) -> list[str]:
    return sorted(p.name for p in service.uploads.folder.iterdir())


def test_a_saved_photo_has_an_id_a_size_and_a_file(service, photos):
    saved = service.save_photo(photos[0], "tray.png")
    assert len(saved["image_id"]) == 32 and saved["width"] == saved["height"] == 256
    assert saved["bytes"] == len(photos[0])
    assert service.photo_path(saved["image_id"]).read_bytes() == photos[0]


@pytest.mark.parametrize("image_id, words", [("f" * 32, "no uploaded image"), ("../etc/passwd", "32 lowercase hex")])
def test_unknown_or_malformed_photo_ids_are_not_found(service, image_id, words):
    with pytest.raises(NotFoundError, match=words):
        service.photo_path(image_id)


def test_inspection_of_a_defective_photo_with_the_only_product(service, photos):
    assert service.list_products() == ["label"]
    result = service.inspect_upload(photos[1], "bad.png")  # no product: the only one is used
    assert result["product"] == "label" and result["verdict"] == "defective" and result["defects"]
    assert result["score"] > result["threshold"] and result["summary"].startswith("label: DEFECTIVE")
    assert service.photo_path(result["image_id"]).read_bytes() == photos[1]
    assert service.photo_path(result["annotated_image_id"]).suffix == ".png"
    good = service.inspect_upload(photos[0], product="label")
    assert good["verdict"] == "good" and good["defects"] == []


def test_a_product_must_be_named_unless_there_is_exactly_one(service, photos, tmp_path):
    for ext in (".npz", ".json"):
        shutil.copy(tmp_path / "products" / f"label{ext}", tmp_path / "products" / f"tray{ext}")
    with pytest.raises(ToolInputError, match="say which product the photo shows; known: label, tray"):
        service.inspect_upload(photos[0])
    none = InspectionService(UploadStore(tmp_path / "up2"), ProductStore(tmp_path / "nothing"))
    with pytest.raises(ToolInputError, match="no product has been learned yet: teach one"):
        none.inspect_upload(photos[0])
    assert _stored(service) == [] and _stored(none) == []  # nothing stored before the product is known


def test_unknown_product_and_bad_bytes_are_inspection_errors(service, photos):
    with pytest.raises(InspectionError, match="unknown product 'pallet'; known: label"):
        service.inspect_upload(photos[0], product="pallet")
    with pytest.raises(InspectionError, match="GIF"):
        service.inspect_upload(b"GIF89a" + b"\0" * 64, "x.gif", product="label")
    assert issubclass(InspectionError, ToolInputError)


def test_too_many_inspections_at_once_are_refused_and_slots_come_back(photos, fitted_folder, tmp_path):
    full = InspectionService(UploadStore(tmp_path / "a"), ProductStore(fitted_folder), at_once=0)
    with pytest.raises(ToolBusyError, match="inspections are busy; try again in a few seconds") as busy:
        full.inspect_upload(photos[0], product="label")
    assert busy.value.retry_after_s == 3.0 and _stored(full) == []  # refused before anything is stored
    one = InspectionService(UploadStore(tmp_path / "b"), ProductStore(fitted_folder), at_once=1)
    with pytest.raises(InspectionError):
        one.inspect_upload(photos[0], product="pallet")  # a failed inspection gives its slot back
    assert one.inspect_upload(photos[0], product="label")["verdict"] == "good"
