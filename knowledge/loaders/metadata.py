"""Document metadata: folder convention, then front matter, then a sidecar file.

Later sources win, key by key: ``kind`` from the folder names, overridden by what the document
says about itself (Markdown front matter, DOCX/HTML title), overridden by ``<file>.meta.yaml``
or ``<file>.meta.json`` next to the document. Unknown keys land in ``meta.extra``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.errors import IngestError
from knowledge.types import DOC_KINDS, Block, DocumentMeta

SIDECAR_SUFFIXES = (".meta.yaml", ".meta.json")
_SIDECAR_MAX_BYTES = 256 * 1024
_KNOWN = ("kind", "title", "lang", "asset", "crop", "effective_date")

# Folder names (any directory between the root and the file) that give a document its kind.
FOLDER_KINDS: dict[str, str] = {
    **dict.fromkeys(("regulations", "regulation", "laws", "law", "safety", "法规"), "regulation"),
    **dict.fromkeys(("manuals", "manual", "equipment", "手册"), "manual"),
    **dict.fromkeys(("crops", "crop", "agronomy", "种植"), "crop"),
}


@dataclass
class Parsed:
    """What a format loader hands back: blocks plus whatever metadata the file carries."""

    blocks: list[Block]
    front: dict[str, Any] = field(default_factory=dict)  # front matter / document properties
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # loader facts, e.g. ocr_pages


def is_sidecar(path: Path | str) -> bool:
    """True for ``<file>.meta.yaml`` / ``<file>.meta.json``: metadata, not a document."""
    return Path(path).name.lower().endswith(SIDECAR_SUFFIXES)


def folder_kind(path: Path, root: Path | None) -> str:
    """Kind from the directory names between ``root`` and the file; the deepest match wins.

    A name matches when it, or one of its parts split on ``_ - . space``, is a known folder
    name ("regulations_zh" counts as "regulations"), or it contains a Chinese keyword.
    """
    parent = path.parent
    if root is not None:
        try:
            parent = path.resolve().parent.relative_to(root.resolve())
        except ValueError:
            pass  # not under root: use the path as given
    for name in reversed(parent.parts):
        lowered = name.lower()
        tokens = [lowered, *re.split(r"[_\-. ]+", lowered)]
        for token in tokens:
            if token in FOLDER_KINDS:
                return FOLDER_KINDS[token]
        for keyword, kind in FOLDER_KINDS.items():
            if not keyword.isascii() and keyword in name:
                return kind
    return "other"


def read_sidecar(path: Path, source: str) -> tuple[dict[str, Any], list[str]]:
    """The sidecar mapping for document ``path`` ({} when there is none) and warnings."""
    found = [path.with_name(path.name + s) for s in SIDECAR_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if not found:
        return {}, []
    warnings = [f"ignored {p.name}: {found[0].name} takes precedence" for p in found[1:]]
    side = found[0]
    try:
        if side.stat().st_size > _SIDECAR_MAX_BYTES:
            raise IngestError(source, f"sidecar {side.name} is larger than {_SIDECAR_MAX_BYTES // 1024} KB")
        raw = side.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(source, f"cannot read sidecar {side.name}: {exc}") from exc
    try:
        if side.name.lower().endswith(".json"):
            data = json.loads(raw) if raw.strip() else {}
        else:
            import yaml

            data = yaml.safe_load(raw) if raw.strip() else {}
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError, RecursionError
        raise IngestError(source, f"invalid sidecar {side.name}: {_first_line(exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise IngestError(source, f"invalid sidecar {side.name}: expected a mapping, got {type(data).__name__}")
    return data, warnings


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_MAX_NODES = 10_000


def _jsonable(value: Any, budget: list[int] | None = None) -> Any:
    """YAML gives dates and odd keys; the index stores JSON. YAML aliases can make a small file
    a huge tree ("billion laughs"), so the number of values copied is capped."""
    budget = budget if budget is not None else [_MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {_MAX_NODES} values")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v, budget) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def normalize_lang(value: Any) -> str | None:
    text = str(value).strip().lower().replace("_", "-")
    if text in ("zh", "chinese", "中文", "汉语", "cn") or text.startswith("zh-"):
        return "zh"
    if text in ("en", "english", "英文", "英语") or text.startswith("en-"):
        return "en"
    return None


def _check(mapping: dict[str, Any], source: str, origin: str) -> dict[str, Any]:
    """Validate and normalise one metadata mapping; unknown keys are gathered under "extra"."""
    try:
        mapping = _jsonable(mapping)
    except (ValueError, RecursionError) as exc:
        raise IngestError(source, f"{origin} is too large or too deeply nested ({exc})") from None
    out: dict[str, Any] = {"extra": {}}
    for raw_key, value in mapping.items():
        key = str(raw_key).strip().lower()
        if key == "extra" and isinstance(value, dict):
            out["extra"].update(value)
        elif key not in _KNOWN:
            out["extra"][str(raw_key)] = value
        elif value is None or value == "":
            continue
        elif key == "kind":
            kind = str(value).strip().lower()
            if kind not in DOC_KINDS:
                raise IngestError(
                    source, f"invalid kind {value!r} in {origin}; expected one of {', '.join(DOC_KINDS)}"
                )
            out["kind"] = kind
        elif key == "lang":
            lang = normalize_lang(value)
            if lang is None:
                raise IngestError(source, f"invalid lang {value!r} in {origin}; expected 'zh' or 'en'")
            out["lang"] = lang
        elif key == "effective_date":
            out["effective_date"] = _iso_date(value, source, origin)
        elif isinstance(value, (dict, list)):
            raise IngestError(source, f"invalid {key} in {origin}: expected text, got {type(value).__name__}")
        else:
            out[key] = str(value).strip()
    return out


def _iso_date(value: Any, source: str, origin: str) -> str:
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).date().isoformat()  # YAML datetimes
    except ValueError:
        raise IngestError(
            source, f"invalid effective_date {value!r} in {origin}; expected YYYY-MM-DD"
        ) from None


def build_meta(
    path: Path, root: Path | None, source: str, parsed: Parsed
) -> tuple[DocumentMeta, list[str]]:
    """Merge folder convention < embedded metadata < sidecar into a DocumentMeta (lang may be empty)."""
    meta = DocumentMeta(kind=folder_kind(path, root))
    sidecar, warnings = read_sidecar(path, source)
    for mapping, origin in ((parsed.front, "front matter"), (sidecar, "sidecar")):
        checked = _check(mapping, source, origin)
        meta.extra.update(checked.pop("extra"))
        for key, value in checked.items():
            setattr(meta, key, value)
    meta.extra.update(_jsonable(parsed.extra))
    if not meta.title:
        meta.title = default_title(parsed.blocks, path)
    return meta, warnings


def default_title(blocks: list[Block], path: Path) -> str:
    for block in blocks:
        if block.kind == "heading" and block.level == 1 and block.text.strip():
            return block.text.strip()
    return path.stem
