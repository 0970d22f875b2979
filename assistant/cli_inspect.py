"""`onsite inspect`: teach the photo inspector a product and check photos, from the terminal.

Works on the data home's product folder directly (no index or model is loaded), so it is quick
and works while the server runs: the server picks up a new or re-fitted product on its next use.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from assistant.cli_common import bad_input, fail
from assistant.errors import USER_ERRORS

inspect_app = typer.Typer(no_args_is_help=True, help="Photo inspection: teach products, check photos.")
_PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _service():
    from assistant.settings import Settings
    from tools.inspection.service import InspectionService
    from tools.inspection.tool import ProductStore
    from tools.inspection.uploads import UploadStore

    settings = Settings()
    return InspectionService(UploadStore(settings.uploads_dir), ProductStore(settings.home / "inspection"))


def _photos(paths: List[Path]) -> list[Path]:
    """The files given, a folder's PNG/JPEG files (sorted); a missing path exits 2."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _PHOTO_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            bad_input(FileNotFoundError(f"no such photo or folder: {p}"))
    return out


def _is_input_error(exc: BaseException) -> bool:
    from tools.errors import NotFoundError, ToolInputError

    return isinstance(exc, (ToolInputError, NotFoundError))  # a refused photo, name, unknown product


def _run(fn, *args):
    try:
        return fn(*args)
    except USER_ERRORS as exc:
        (bad_input if _is_input_error(exc) else fail)(exc)


def _show(product: dict) -> None:
    if product.get("kind") == "detector":
        typer.echo(f"{product['name']}: ONNX detector, confidence threshold {product['threshold']}")
        return
    scores = product.get("reference_scores") or []
    typer.echo(f"{product['name']}: {product['references']} references, threshold {product['threshold']:.3f} "
               f"({product.get('mode', '?')} mode)")
    if scores:
        typer.echo(f"  good references score {min(scores):.3f}–{max(scores):.3f} (leave-one-out); "
                   f"a photo scoring above {product['threshold']:.3f} is flagged defective")
    if product.get("flagged_references"):
        typer.echo(f"  references above the threshold: {product['flagged_references']}")


@inspect_app.command("fit")
def fit(
    name: str = typer.Argument(..., help="Product name: letters, digits, '_', '-'; replaces one of that name."),
    photos: List[Path] = typer.Argument(..., help="Photos of good items (PNG/JPEG), or folders of them."),
    golden: bool = typer.Option(False, "--golden", help="The photos are 1–20 golden images of one fixed camera view: "
                                "compare each new photo with them instead of learning a model."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Learn a product from 3–200 photos of good items (or golden images of a fixed view, --golden)
    and show its threshold and reference scores."""
    files = _photos(photos)
    service = _service()
    started = time.monotonic()
    product = _run(service.fit_product, name, [(f.name, f.read_bytes()) for f in files], None, golden)
    product["fit_s"] = round(time.monotonic() - started, 2)
    if as_json:
        typer.echo(json.dumps(product, ensure_ascii=False, indent=1))
    else:
        _show(product)
        typer.echo(f"  fitted in {product['fit_s']} s")


@inspect_app.command("list")
def list_products(as_json: bool = typer.Option(False, "--json")) -> None:
    """The products photos can be checked against."""
    products = _run(_service().list_product_details)
    if as_json:
        typer.echo(json.dumps(products, ensure_ascii=False, indent=1))
    elif not products:
        typer.echo("no product learned yet: onsite inspect fit NAME PHOTO_OR_FOLDER...")
    for p in products:
        _show(p)


@inspect_app.command("check")
def check(
    photo: Path = typer.Argument(..., help="The photo to check (PNG/JPEG)."),
    product: Optional[str] = typer.Option(None, "--product", help="Product to compare with (needed when there are several)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Inspect one photo: verdict, score against the threshold, defect boxes, annotated copy."""
    if not photo.is_file():
        bad_input(FileNotFoundError(f"no such photo: {photo}"))
    service = _service()
    result = _run(service.inspect_upload, photo.read_bytes(), photo.name, product)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=1))
        return
    typer.echo(result.get("summary") or f"{result['product']}: {result['verdict']}")
    for d in result.get("defects", []):
        typer.echo(f"  {d.get('class', 'anomaly')} {d['score']:.3f} at box {d['box']}")
    typer.echo(f"  annotated copy: {service.photo_path(result['annotated_image_id'])}")


@inspect_app.command("delete")
def delete(name: str = typer.Argument(..., help="The product to forget.")) -> None:
    """Forget a fitted product (the sample product too)."""
    _run(_service().delete_product, name)
    typer.echo(f"deleted product {name}")
