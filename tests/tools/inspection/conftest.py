"""A small synthetic inspection set (one texture, one object), generated once per session, and
inspectors fitted on its references."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tools.inspection.anomaly import Inspector
from tools.inspection.images import open_image
from tools.inspection.synthetic import generate

SIZE, SEED = 256, 2
PRODUCTS = ("metal", "label")  # texture mode, aligned mode


def rows(folder: Path, split: str) -> list[dict]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == split]


def mask_of(folder: Path, row: dict) -> np.ndarray:
    return open_image(folder / row["mask"]).max(axis=2) > 127


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inspection-set")
    generate(root, products=PRODUCTS, size=SIZE, seed=SEED, n_reference=8, n_good=6, n_defective_per_type=2)
    return root


@pytest.fixture(scope="session")
def fitted(synthetic_root) -> dict[str, Inspector]:
    return {p: Inspector().fit([open_image(synthetic_root / p / r["image"]) for r in rows(synthetic_root / p, "reference")])
            for p in PRODUCTS}
