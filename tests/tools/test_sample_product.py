"""The sample product shipped for a fresh install: learned when no product exists, never over a
site's own, its sample photos judged as their names say — and the photo tab offers them and
gives a result (the issue: "Photo check is a dead end on a fresh install")."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tools.inspection.sample_product import SAMPLE_PRODUCT, ensure_sample_product, sample_photos
from tools.inspection.service import InspectionService
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    said: list[str] = []
    result = ensure_sample_product(home / "inspection", home / "run", said.append)
    return home, result, said


def test_a_fresh_install_gets_the_sample_product_and_its_photos(learned):
    home, result, said = learned
    assert result is not None and result["product"] == SAMPLE_PRODUCT and result["references"] >= 5
    assert ProductStore(home / "inspection").names() == [SAMPLE_PRODUCT]
    photos = sample_photos(home / "inspection")
    assert [p.name for p in photos] == [f"{SAMPLE_PRODUCT}-good.png", f"{SAMPLE_PRODUCT}-spot.png",
                                        f"{SAMPLE_PRODUCT}-missing.png"]
    assert result["photos"] == [str(p) for p in photos]
    assert not list((home / "run").iterdir())  # the synthetic set was only borrowed
    assert said and SAMPLE_PRODUCT in said[0]
    # well under the ~10 s a first start may spend on it (2 cores); measured ≈ 3.3 s
    assert result["seconds"] < 30


def test_the_sample_photos_are_judged_as_their_names_say(learned):
    home, _, _ = learned
    service = InspectionService(UploadStore(home / "uploads"), ProductStore(home / "inspection"))
    verdicts = {p.stem.rsplit("-", 1)[1]: service.inspect_upload(p.read_bytes(), p.name, None)
                for p in sample_photos(home / "inspection")}  # the only product: no name needed
    assert verdicts["good"]["verdict"] == "good"
    assert verdicts["spot"]["verdict"] == "defective" and verdicts["spot"]["defects"]
    assert verdicts["missing"]["verdict"] == "defective" and verdicts["missing"]["defects"]


def test_a_sites_own_product_is_never_replaced(learned, tmp_path):
    home, _, _ = learned
    root = tmp_path / "inspection"
    root.mkdir()
    for suffix in (".json", ".npz"):  # the site has its own product (here: a copy named "cups")
        shutil.copyfile(home / "inspection" / f"{SAMPLE_PRODUCT}{suffix}", root / f"cups{suffix}")
    said: list[str] = []
    assert ensure_sample_product(root, tmp_path / "run", said.append) is None
    assert ProductStore(root).names() == ["cups"] and not sample_photos(root) and said == []


def test_a_failed_fit_is_said_and_does_not_stop_the_start(tmp_path):
    blocked = tmp_path / "inspection"
    blocked.write_text("a file where the products folder should be")
    said: list[str] = []
    assert ensure_sample_product(blocked, tmp_path / "run", said.append) is None
    assert len(said) == 2 and "not learned" in said[1]


# ---- the photo tab on a fresh install (real inspection service, no page server) -----------------

def test_the_photo_tab_offers_the_sample_photos_and_checks_them(learned, tmp_path):
    from ui.tab_inspect import InspectHandlers

    home, _, _ = learned
    service = InspectionService(UploadStore(tmp_path / "uploads"), ProductStore(home / "inspection"))
    page_uploads = tmp_path / "gradio"
    h = InspectHandlers(service, upload_root=page_uploads)
    examples = h.examples()
    assert [kind for kind, _ in examples] == ["good", "spot", "missing"]
    for _, path in examples:  # copies the page may serve and the check accepts as uploads
        assert Path(path).resolve().is_relative_to(page_uploads.resolve())
    product, note = h.refresh("en")
    assert product["value"] == SAMPLE_PRODUCT and "sample product" in note
    assert "示例产品" in h.refresh("zh")[1]
    image, verdict = h.inspect(examples[0][1], SAMPLE_PRODUCT, "en")
    assert verdict.startswith("## GOOD") and isinstance(image, np.ndarray)
    image, verdict = h.inspect(examples[2][1], SAMPLE_PRODUCT, "zh")
    assert verdict.startswith("## 不合格") and "- 异常区域：(" in verdict
    assert h.sample(examples[1][1])() == (examples[1][1], SAMPLE_PRODUCT)  # a sample button fills photo and product
    Path(examples[1][1]).unlink()  # a temp cleaner emptied the upload folder since the page was built
    assert h.sample(examples[1][1])() == (examples[1][1], SAMPLE_PRODUCT) and Path(examples[1][1]).is_file()


def test_with_no_product_the_tab_says_how_to_get_one(tmp_path):
    from ui.tab_inspect import InspectHandlers

    root = tmp_path / "inspection"
    service = InspectionService(UploadStore(tmp_path / "uploads"), ProductStore(root))
    h = InspectHandlers(service, upload_root=tmp_path / "gradio")
    assert h.examples() == []
    _, note = h.refresh("en")
    assert "No product has been learned yet" in note and "Teach a product" in note and "onsite inspect fit" in note
    assert f"python -m tools.inspection.sample_product {root}" in note and SAMPLE_PRODUCT in note
    assert "python -m tools.inspection.sample_product" in h.refresh("zh")[1] and "尚未学习任何产品" in h.refresh("zh")[1]
    photo = tmp_path / "gradio" / "p.png"
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(sample_png())
    assert h.inspect(str(photo), None, "en")[1] == note


def sample_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
