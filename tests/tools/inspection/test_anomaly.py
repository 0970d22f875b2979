"""The training-free inspector on a small synthetic set: ranking, verdicts on moved / relit good
photos, regions on the defects, persistence."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.tools.inspection.conftest import PRODUCTS, SEED, SIZE, mask_of, rows
from tools.inspection.anomaly import Inspector, InspectorConfig
from tools.inspection.images import InspectionError, open_image
from tools.inspection.synthetic import good_photo


def _scores(inspector, folder):
    test = rows(folder, "test")
    labels = np.array([int(r["label"]) for r in test])
    scores = np.array([inspector.predict(open_image(folder / r["image"])).score for r in test])
    return labels, scores


def test_texture_and_object_get_their_search_mode(fitted):
    assert fitted["metal"].aligned is False  # each photo shows another part of the sheet
    assert fitted["label"].aligned is True  # the same object, moved a little


@pytest.mark.parametrize("product", PRODUCTS)
def test_defective_scored_above_good(fitted, synthetic_root, product):
    from sklearn.metrics import roc_auc_score

    labels, scores = _scores(fitted[product], synthetic_root / product)
    assert scores[labels == 1].mean() > 1.5 * scores[labels == 0].mean()
    assert roc_auc_score(labels, scores) >= 0.9
    assert (scores[labels == 0] <= fitted[product].threshold).all()  # no false alarm on good photos


@pytest.mark.parametrize("product", PRODUCTS)
@pytest.mark.parametrize("pose", [
    dict(angle=3.0, shift=(0.04, -0.03)),
    dict(angle=-3.0, shift=(-0.04, 0.04), gain=1.1, offset=0.03),  # moved and brighter
    dict(angle=0.0, shift=(0.0, 0.02), gain=0.85, offset=-0.03),  # darker
])
def test_moved_rotated_relit_good_photos_stay_good(fitted, product, pose):
    result = fitted[product].predict(good_photo(product, SIZE, SEED, **pose))
    assert result.verdict == "good", (result.score, result.threshold)
    assert result.regions == []


@pytest.mark.parametrize("product", PRODUCTS)
def test_jpeg_photos_of_good_parts_stay_good(fitted, synthetic_root, product):
    # references were PNG; a phone or a chat app delivers JPEG
    folder = synthetic_root / product
    for r in (r for r in rows(folder, "test") if r["label"] == "0"):
        buf = io.BytesIO()
        Image.open(folder / r["image"]).save(buf, format="JPEG", quality=80)
        assert fitted[product].predict(open_image(buf.getvalue())).verdict == "good"


def test_regions_overlap_the_defect_masks(fitted, synthetic_root):
    found = overlapping = 0
    for product in PRODUCTS:
        folder = synthetic_root / product
        for r in (r for r in rows(folder, "test") if r["label"] == "1"):
            result = fitted[product].predict(open_image(folder / r["image"]))
            if not result.defective:
                continue
            found += 1
            assert result.regions, "a defective verdict comes with at least one region"
            mask = mask_of(folder, r)
            x0, y0, x1, y1 = result.regions[0].box  # the strongest region
            overlapping += bool(mask[y0:y1, x0:x1].any())
    assert found >= 10
    assert overlapping >= 0.8 * found


def test_anomaly_map_is_the_photo_size_and_peaks_on_the_defect(fitted, synthetic_root):
    folder = synthetic_root / "label"
    row = next(r for r in rows(folder, "test") if r["defect_type"] == "missing")
    img = open_image(folder / row["image"])
    result = fitted["label"].predict(img)
    assert result.anomaly_map.shape == img.shape[:2]
    mask = mask_of(folder, row)
    assert result.anomaly_map[mask].max() >= 0.95 * result.anomaly_map.max()


def test_save_load_round_trip_gives_the_same_scores(fitted, synthetic_root, tmp_path):
    for product in PRODUCTS:
        stem = tmp_path / product
        fitted[product].save(stem, meta={"product": product})
        info = json.loads(stem.with_suffix(".json").read_text())
        assert info["meta"]["product"] == product and info["threshold"] == fitted[product].threshold
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:  # plain arrays only
            assert all(z[k].dtype != object for k in z.files)
        loaded = Inspector.load(stem)
        for r in rows(synthetic_root / product, "test")[:: 4]:
            img = open_image(synthetic_root / product / r["image"])
            a, b = fitted[product].predict(img), loaded.predict(img)
            assert b.score == pytest.approx(a.score, rel=1e-6)
            assert [x.box for x in b.regions] == [x.box for x in a.regions]


def test_load_refuses_object_arrays(fitted, tmp_path):
    stem = tmp_path / "metal"
    fitted["metal"].save(stem)
    np.savez(stem.with_suffix(".npz"), mean=np.array([{"x": 1}], dtype=object), std=np.ones(3),
             anchor=np.ones((4, 4)), bank=np.ones((4, 3)))
    with pytest.raises(InspectionError, match="could not be read"):
        Inspector.load(stem)


def test_too_few_references_and_unfitted_are_clear_errors():
    photo = good_photo("label", 96, 0)
    with pytest.raises(InspectionError, match="at least 3 reference photos"):
        Inspector().fit([photo, photo])
    with pytest.raises(InspectionError, match="not been fitted"):
        Inspector().predict(photo)
    with pytest.raises(InspectionError, match="mode must be"):
        Inspector(InspectorConfig(mode="psychic"))


def test_photo_of_another_shape_refused(fitted):
    with pytest.raises(InspectionError, match="take the photo the way the references were taken"):
        fitted["label"].predict(np.zeros((SIZE, 2 * SIZE, 3), np.uint8))


def test_tiny_or_grey_arrays_refused(fitted):
    with pytest.raises(InspectionError, match="at least 32×32"):
        fitted["label"].predict(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InspectionError, match="RGB"):
        fitted["label"].predict(np.zeros((64, 64), np.uint8))
    with pytest.raises(InspectionError, match="RGB"):
        fitted["label"].predict(np.zeros((64, 64, 4), np.uint8))


@pytest.mark.slow
def test_speed_on_512_photos():
    refs = [good_photo("metal", 512, 0, angle=a, shift=(s, -s)) for a, s in ((0, 0), (2, 0.05), (-2, 0.1), (1, 0.15))]
    inspector = Inspector().fit(refs)
    photo = good_photo("metal", 512, 0, angle=1, shift=(0.12, 0.02))
    inspector.predict(photo)
    times = sorted(inspector.predict(photo).ms for _ in range(5))
    assert times[2] < 300
