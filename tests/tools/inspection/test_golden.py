"""Golden-image inspection: a re-shot good item (shifted, rotated, relit) passes; a stain or a
missing piece is flagged with a box over it; golden products are saved, loaded and served by the
product store and the inspect_image tool."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tools.inspection.golden import GoldenConfig, GoldenReference, fit_golden_product, is_golden
from tools.inspection.images import InspectionError
from tools.inspection.tool import InspectImage, ProductStore
from tools.inspection.uploads import UploadStore

SIDE = 384


def scene(seed: int = 3, jitter: float = 0.0) -> np.ndarray:
    """A fixed view of a part: a board with pads, holes, traces and a label; ``jitter`` varies
    the item slightly (as two good items differ) without moving anything."""
    rng = np.random.default_rng(seed)
    img = np.full((SIDE, SIDE, 3), (40, 110, 60), np.uint8)
    for _ in range(18):
        x, y = rng.integers(20, SIDE - 60, 2)
        w, h = rng.integers(10, 40, 2)
        cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), (200, 180, 90), -1)
    for _ in range(12):
        cv2.circle(img, tuple(int(v) for v in rng.integers(20, SIDE - 20, 2)), int(rng.integers(4, 9)), (20, 20, 20), -1)
    for _ in range(8):
        p, q = rng.integers(10, SIDE - 10, (2, 2))
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), (190, 170, 80), 3)
    cv2.putText(img, "PN-4471", (30, SIDE - 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (235, 235, 235), 2)
    if jitter:
        noise = np.random.default_rng(seed + 100).normal(0, jitter, img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img


def reshoot(img: np.ndarray, dx: float = 9, dy: float = -6, angle: float = 0.8, gain: float = 0.65,
            gamma: float = 1.2) -> np.ndarray:
    """The same item under another shot: moved, turned, darker, another gamma, a light gradient."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255
    ramp = np.linspace(0.85, 1.1, w, dtype=np.float32)[None, :, None]
    return np.clip(255 * (np.clip(out * gain * ramp, 0, 1) ** gamma), 0, 255).astype(np.uint8)


def overlaps(box, x0, y0, x1, y1) -> bool:
    return box[0] < x1 and x0 < box[2] and box[1] < y1 and y0 < box[3]


@pytest.fixture(scope="module")
def golden() -> GoldenReference:
    return GoldenReference().fit([scene()])


def test_reshot_good_item_is_good(golden):
    result = golden.predict(reshoot(scene()))
    assert result.verdict == "good", (result.score, result.threshold)
    assert result.regions == []
    assert result.alignment > 0.5
    assert result.anomaly_map.shape == (SIDE, SIDE)


def test_stain_is_flagged_with_its_box(golden):
    stained = scene()
    cv2.circle(stained, (250, 120), 11, (90, 60, 30), -1)  # a brown stain
    result = golden.predict(reshoot(stained, dx=-5, dy=4, angle=-0.6, gain=1.15, gamma=0.9))
    assert result.verdict == "defective", (result.score, result.threshold)
    # in the photo's own frame: the stain moved with the shot, about (-5, +4) px
    assert overlaps(result.regions[0].box, 230, 100, 270, 140), result.regions[0].box
    assert result.regions[0].box[2] - result.regions[0].box[0] < 120  # a box around the stain, not the frame


def test_missing_piece_is_flagged_with_its_box(golden):
    board = scene()
    broken = board.copy()
    broken[200:260, 140:200] = (40, 110, 60)  # whatever stood there is gone: bare board
    assert np.abs(broken.astype(int) - board).sum() > 0  # the patch covered something
    result = golden.predict(reshoot(broken))
    assert result.verdict == "defective", (result.score, result.threshold)
    assert any(overlaps(r.box, 140, 200, 200, 260) for r in result.regions), [r.box for r in result.regions]


def test_several_goldens_set_the_threshold_from_each_other():
    ref = GoldenReference(GoldenConfig(augments=2)).fit([scene(jitter=6), reshoot(scene(jitter=6), gain=0.9, gamma=1.0)])
    assert len(ref.calibration) == 2 + 2 * 2  # leave-one-out + augmented copies
    assert ref.threshold == pytest.approx(max(ref.calibration) * ref.config.margin)
    assert ref.predict(reshoot(scene(jitter=6), dx=-4, dy=3, angle=-0.5)).verdict == "good"


def test_a_photo_of_another_view_is_defective_with_a_note(golden):
    for photo in (scene(11), np.zeros((SIDE, SIDE, 3), np.uint8)):  # another part, a covered lens
        data = golden.predict(photo).to_dict()
        assert data["verdict"] == "defective" and "does not match the golden view" in data["note"]
    assert "note" not in golden.predict(reshoot(scene())).to_dict()


def test_a_golden_of_another_view_is_refused():
    with pytest.raises(InspectionError, match="same view"):
        GoldenReference().fit([scene(3), scene(11)])
    with pytest.raises(InspectionError, match="same fixed camera"):
        GoldenReference().fit([scene()]).predict(np.zeros((200, 400, 3), np.uint8))
    with pytest.raises(InspectionError, match="at least one"):
        GoldenReference().fit([])
    with pytest.raises(InspectionError, match="32×32"):
        GoldenReference().fit([np.zeros((8, 8, 3), np.uint8)])


def test_golden_product_is_saved_loaded_and_served_by_the_tool(tmp_path):
    products, uploads = ProductStore(tmp_path / "products"), UploadStore(tmp_path / "uploads")
    with pytest.raises(InspectionError, match="product name"):
        fit_golden_product(products, "../board", [scene()])
    fit_golden_product(products, "board", [scene()])
    info = json.loads((products.folder / "board.json").read_text())
    assert info["config"]["mode"] == "golden" and info["format"] == 1
    assert is_golden(products.folder / "board") and "board" in products.names()
    with np.load(products.folder / "board.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert z["goldens"].dtype == np.uint8
    model = products.get("board")
    assert isinstance(model, GoldenReference) and model.threshold == pytest.approx(info["threshold"])

    tool = InspectImage(uploads, products)
    stained = scene()
    cv2.circle(stained, (250, 120), 11, (90, 60, 30), -1)
    for photo, verdict in ((reshoot(scene()), "good"), (reshoot(stained), "defective")):
        image_id = uploads.save_array(photo, "shot.png")
        result = tool.run(InspectImage.Args(image_id=image_id, product="board"))
        assert result.ok, result.error
        assert result.data["verdict"] == verdict and result.data["backend"] == "golden"
        assert set(result.data) >= {"score", "threshold", "defects", "annotated_image_id", "image_size"}
        assert bool(result.data["defects"]) == (verdict == "defective")


def test_damaged_golden_file_is_a_clear_error(tmp_path):
    fit_golden_product(ProductStore(tmp_path), "board", [scene()])
    info = json.loads((tmp_path / "board.json").read_text())
    info["work_hw"] = [10, 10]
    (tmp_path / "board.json").write_text(json.dumps(info))
    with pytest.raises(InspectionError, match="could not be read"):
        GoldenReference.load(tmp_path / "board")
    info["format"] = 99
    (tmp_path / "board.json").write_text(json.dumps(info))
    with pytest.raises(InspectionError, match="fit it again"):
        GoldenReference.load(tmp_path / "board")


def test_template_vs_test_eval_pairs_each_test_with_its_template(tmp_path):
    """The DeepPCB-style eval: <id>_test scored against <id>_temp, good views as new shots, a test
    image without its template counted as skipped."""
    from evals.inspection_golden import evaluate_golden, main

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rows = ["image,label,split,defect_type,mask"]
    for k, seed in enumerate((3, 5)):
        board = scene(seed)
        cv2.imwrite(str(tmp_path / f"images/{k}_temp.png"), board[..., ::-1])
        stained, mask = board.copy(), np.zeros(board.shape[:2], np.uint8)
        cv2.circle(stained, (200, 150), 12, (90, 60, 30), -1)
        cv2.rectangle(mask, (186, 136), (214, 164), 255, -1)
        cv2.imwrite(str(tmp_path / f"images/{k}_test.png"), stained[..., ::-1])
        cv2.imwrite(str(tmp_path / f"masks/{k}_test.png"), mask)
        rows += [f"images/{k}_temp.png,0,test,pcb,", f"images/{k}_test.png,1,test,defect,masks/{k}_test.png"]
    cv2.imwrite(str(tmp_path / "images/9_test.png"), scene(7)[..., ::-1])
    rows.append("images/9_test.png,1,test,defect,")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    out = evaluate_golden(tmp_path, GoldenConfig(augments=3))
    assert (out["defective"], out["good"], out["skipped_no_template"]) == (2, 2, 1)
    assert out["image_auroc"] == 1.0 and out["pixel_auroc"] > 0.9 and out["box_hit_rate"] == 1.0
    assert main([str(tmp_path), "--as-shot", "--json"]) == 0


def test_the_service_lists_a_golden_product_beside_the_learned_ones(tmp_path):
    """GET /api/v1/products, `onsite inspect list` and the page read products through the service:
    a golden product is described as one (its goldens, its threshold), not as a learned product."""
    from tools.inspection.service import InspectionService

    products = ProductStore(tmp_path / "products")
    fit_golden_product(products, "board", [scene(), scene(seed=3, jitter=2.0)])
    service = InspectionService(UploadStore(tmp_path / "uploads"), products)
    [board] = service.list_product_details()
    assert (board["name"], board["kind"], board["mode"], board["references"]) == ("board", "golden", "golden", 2)
    assert board["threshold"] > board["highest_reference_score"] > 0 and board["bytes"] > 0
    assert "golden view" in board["flags"]
