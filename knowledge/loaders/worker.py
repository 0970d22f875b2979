"""Documents of every format are parsed here, in a child process under limits, never in the
server or the builder (started by ``knowledge.loaders.load_document``).

    python -m knowledge.loaders.worker --mem-mb 1024 --soft-as     (started by ChildPool)

The parent keeps up to two of these per memory limit and reuses them across a batch; each
request is one file, answered with the whole ``LoadedDocument`` as JSON. A file that makes the
parser exceed its address space (``ingest.parse_memory_mb``) or its wall clock
(``ingest.parse_timeout_s``; for PDFs twice ``pdf_timeout_s`` more, as their own extract and
OCR workers run from here) is an ``IngestError`` for that file alone. The limit on the address
space is a soft one: the PDF workers started from here set their own (``pdf_memory_mb``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import IngestError
from knowledge.loaders.child import ChildError, ChildPool, ChildTimeout, serve
from knowledge.types import Block, DocumentMeta, LoadedDocument

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

POOL_SIZE = max(1, min(2, os.cpu_count() or 1))
_pools: dict[int, ChildPool] = {}
_pools_lock = threading.Lock()


def _pool(mem_mb: int) -> ChildPool:
    with _pools_lock:
        pool = _pools.get(mem_mb)
        if pool is None:
            pool = _pools[mem_mb] = ChildPool("knowledge.loaders.worker", mem_mb, size=POOL_SIZE, idle_s=30.0,
                                              hard_as=False, what="document parser")
        return pool


def to_json(doc: LoadedDocument) -> bytes:
    return json.dumps(dataclasses.asdict(doc), ensure_ascii=False).encode("utf-8")


def from_json(data: Any) -> LoadedDocument:
    raw = json.loads(data if isinstance(data, (bytes, bytearray)) else memoryview(data).tobytes())
    return LoadedDocument(**{**raw, "meta": DocumentMeta(**raw["meta"]), "blocks": [Block(**b) for b in raw["blocks"]]})


def timeout_of(path: Path, settings: IngestSettings) -> float:
    if path.suffix.lower() == ".pdf":  # the extract worker, then the OCR worker, each with its own limit
        return settings.parse_timeout_s + 2 * settings.pdf_timeout_s + 10
    return settings.parse_timeout_s


def load_in_child(path: Path, root: Path | None, source: str, settings: IngestSettings) -> LoadedDocument:
    """``load_document``'s work done by a pooled child; an ``IngestError`` when it fails."""
    timeout = timeout_of(path, settings)
    request = {"path": os.path.abspath(path), "root": str(root) if root is not None else None,
               "settings": settings.model_dump(mode="json")}
    try:
        reply, payload = _pool(settings.parse_memory_mb).call(
            request, timeout_s=timeout, cpu_s=math.ceil(timeout) + 5)
    except ChildTimeout:
        raise IngestError(source, f"parsing timed out after {timeout:g} s; the file was skipped") from None
    except ChildError as exc:
        raise IngestError(source, f"{exc}; the file was skipped") from None
    if reply.get("error") == "input":
        raise IngestError(source, str(reply.get("message")))
    if reply.get("error") == "memory":
        raise IngestError(source, f"parsing {reply.get('message')}; the file was skipped")
    if reply.get("error"):
        suffix = path.suffix.lower() or "file"
        raise IngestError(source, f"cannot read {suffix}: {reply.get('message')}")
    return from_json(payload)


def _handle(request: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    from knowledge.loaders.formats import load_here
    from knowledge.loaders.child import Refused
    from knowledge.settings import IngestSettings

    settings = IngestSettings.model_validate(request["settings"])
    root = Path(request["root"]) if request.get("root") else None
    try:
        doc = load_here(Path(request["path"]), root, settings)
    except IngestError as exc:
        raise Refused(exc.reason) from None
    return {}, to_json(doc)


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # parsers log per broken object: unbounded


if __name__ == "__main__":
    _quiet_libraries()
    sys.exit(serve(_handle))
