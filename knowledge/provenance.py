"""Who added a document to the knowledge, and when.

Uploads are recorded in a hidden JSON file next to the documents (``.provenance.json`` in the
documents folder: the builder and the documents list skip hidden files, and it lives outside the
index, so it survives rebuilds and rollbacks). A document nobody uploaded — copied into a folder
the index reads — is "file system", added at the file's modification time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROVENANCE_FILE = ".provenance.json"
FILE_SYSTEM = "file system"
_lock = threading.Lock()


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def _read(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / PROVENANCE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # a damaged record loses provenance, never a document
        log.warning("cannot read %s (%s): documents there count as added by the file system", path, exc)
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _write(folder: Path, records: dict[str, dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".provenance-{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, folder / PROVENANCE_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def record_added(folder: Path, name: str, added_by: str, when: float | None = None) -> dict[str, str]:
    """Note that ``added_by`` (a principal id such as ``key:alice``) added ``name`` now."""
    entry = {"added_by": str(added_by)[:120], "added_at": _stamp(time.time() if when is None else when)}
    with _lock:
        records = _read(folder)
        records[name] = entry
        _write(folder, records)
    return entry


def forget(folder: Path, name: str) -> None:
    with _lock:
        records = _read(folder)
        if records.pop(name, None) is not None:
            _write(folder, records)


def provenance_of(path: Path, records: dict[Path, dict[str, dict[str, str]]] | None = None) -> dict[str, str]:
    """{"added_by", "added_at"} of a document file. ``records`` caches each folder's record file."""
    folder = path.parent
    if records is None:
        found = _read(folder)
    else:
        found = records.setdefault(folder, _read(folder))
    entry = found.get(path.name)
    if entry and entry.get("added_by"):
        return {"added_by": str(entry["added_by"]), "added_at": str(entry.get("added_at") or "")}
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {"added_by": FILE_SYSTEM, "added_at": ""}
    return {"added_by": FILE_SYSTEM, "added_at": _stamp(mtime)}


def describe(meta: dict[str, Any], lang: str = "en") -> str:
    """"added by key:alice on 2026-12-07" / "由 key:alice 于 2026-12-07 添加" ('' when unknown)."""
    who, when = meta.get("added_by"), (meta.get("added_at") or "")[:10]
    if not who:
        return ""
    if lang == "zh":
        return f"由 {who} 于 {when} 添加" if when else f"由 {who} 添加"
    return f"added by {who} on {when}" if when else f"added by {who}"
