"""`onsite inspect fit / list / check / delete`: teach a product from a folder of good photos,
check a photo (text and --json), forget it; bad input exits 2 with a clear line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from tools.inspection.synthetic import generate


@pytest.fixture(scope="module")
def metal_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("metal")
    generate(root, products=("metal",), size=256, seed=4, n_reference=4, n_good=1, n_defective_per_type=1)
    refs = root / "refs"
    refs.mkdir()
    for p in sorted((root / "metal" / "images").glob("ref_*.png")):
        (refs / p.name).write_bytes(p.read_bytes())
    return root / "metal" / "images", refs


def _env(tmp_path):
    return {"ONSITE_HOME": str(tmp_path / "home"), "ONSITE_EMBEDDING__MODEL": "fake:64"}


def test_fit_list_check_delete(tmp_path, metal_set):
    images, refs = metal_set
    run = CliRunner()
    out = run.invoke(app, ["inspect", "fit", "metal", str(refs), "--json"], env=_env(tmp_path))
    assert out.exit_code == 0, out.output
    product = json.loads(out.stdout)
    assert product["references"] == 4 and product["flagged_references"] == [] and product["fit_s"] >= 0
    out = run.invoke(app, ["inspect", "list"], env=_env(tmp_path))
    assert out.exit_code == 0 and "metal: 4 references, threshold" in out.stdout
    out = run.invoke(app, ["inspect", "check", str(images / "good_000.png"), "--json"], env=_env(tmp_path))
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["verdict"] == "good" and result["product"] == "metal" and result["score"] <= result["threshold"]
    defective = sorted(p for p in images.glob("*.png") if not p.name.startswith(("ref_", "good_")))[0]
    out = run.invoke(app, ["inspect", "check", str(defective), "--product", "metal"], env=_env(tmp_path))
    assert out.exit_code == 0 and "annotated copy:" in out.stdout
    out = run.invoke(app, ["inspect", "delete", "metal"], env=_env(tmp_path))
    assert out.exit_code == 0 and "deleted product metal" in out.stdout
    out = run.invoke(app, ["inspect", "list"], env=_env(tmp_path))
    assert "no product learned yet" in out.stdout


def test_bad_input_exits_2(tmp_path, metal_set):
    images, refs = metal_set
    run = CliRunner()
    out = run.invoke(app, ["inspect", "fit", "metal", str(tmp_path / "nowhere")], env=_env(tmp_path))
    assert out.exit_code == 2 and "no such photo or folder" in out.output
    out = run.invoke(app, ["inspect", "fit", "../x", str(refs)], env=_env(tmp_path))
    assert out.exit_code == 2 and "product name" in out.output
    out = run.invoke(app, ["inspect", "fit", "metal", str(refs / "ref_000.png")], env=_env(tmp_path))
    assert out.exit_code == 2 and "3 to 200 photos" in out.output
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    out = run.invoke(app, ["inspect", "fit", "metal", str(refs), str(bad)], env=_env(tmp_path))
    assert out.exit_code == 2 and "(bad.jpg) was refused" in out.output
    out = run.invoke(app, ["inspect", "check", str(images / "good_000.png")], env=_env(tmp_path))
    assert out.exit_code == 2 and "no product has been learned yet" in out.output
    out = run.invoke(app, ["inspect", "delete", "ghost"], env=_env(tmp_path))
    assert out.exit_code == 2 and "unknown product" in out.output


def test_fit_golden_from_one_photo(tmp_path, metal_set):
    images, refs = metal_set
    run = CliRunner()
    one = str(refs / "ref_000.png")
    out = run.invoke(app, ["inspect", "fit", "plate", one, "--golden", "--json"], env=_env(tmp_path))
    assert out.exit_code == 0, out.output
    product = json.loads(out.stdout)
    assert product["kind"] == "golden" and product["references"] == 1
    out = run.invoke(app, ["inspect", "check", one, "--product", "plate", "--json"], env=_env(tmp_path))
    assert out.exit_code == 0 and json.loads(out.stdout)["verdict"] == "good", out.stdout
