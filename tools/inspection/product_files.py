"""A fitted product on disk: ``<name>.npz`` (arrays, compressed, no pickle) + ``<name>.json``.
The product list is the JSON files that have their ``.npz`` (``tool.ProductStore``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tools.inspection.images import InspectionError


def paths(stem: Path) -> tuple[Path, Path]:
    # not Path.with_suffix: it would cut a product name at its own dot ("pump.v2" → "pump")
    return stem.parent / f"{stem.name}.npz", stem.parent / f"{stem.name}.json"


def write_state(stem: Path, arrays: dict[str, np.ndarray], info: dict) -> None:
    """One product = ``stem.npz`` (compressed arrays) + ``stem.json``."""
    npz, js = paths(Path(stem))
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, **arrays)
    js.write_text(json.dumps(info, indent=1, ensure_ascii=False), encoding="utf-8")


def read_state(stem: Path, build):
    """``build(arrays, info)`` on a product's files; unreadable files are an ``InspectionError``."""
    npz, js = paths(Path(stem))
    try:
        info = json.loads(js.read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("the JSON is not an object")
        with np.load(npz, allow_pickle=False) as z:
            return build(z, info)
    except InspectionError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise InspectionError(f"product model {Path(stem).name} could not be read: {exc}") from exc
