"""Model files: where the configured GGUF lives, its hash check, download, and status.

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
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from assistant.errors import ConfigError
from assistant.llm import catalogue
from assistant.llm.base import ModelError
from assistant.llm.catalogue import CatalogueModel
from assistant.llm.settings import LLMConfig

log = logging.getLogger(__name__)

HASH_CACHE = ".onsite-sha256.json"
DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # catalogue name, or the path as configured
    path: Path
    expected_sha256: str | None
    entry: CatalogueModel | None  # None for a GGUF given by path


def resolve_model(settings: LLMConfig) -> ResolvedModel:
    """The configured model: a catalogue name (file in ``models_dir``) or a path to a .gguf."""
    llm = settings.llm.llamacpp
    entry = catalogue.get(llm.model)
    if entry is not None:
        return ResolvedModel(entry.name, settings.models_dir / entry.filename, _norm(entry.sha256 or llm.sha256), entry)
    raw = Path(llm.model).expanduser()
    if raw.suffix.lower() != ".gguf":
        raise ConfigError(
            f"unknown model {llm.model!r}: not in the catalogue ({', '.join(sorted(catalogue.CATALOGUE))}) "
            "and not a path to a .gguf file"
        )
    # a relative path is taken from the working directory if it exists there, else from models_dir
    path = raw if raw.is_absolute() or raw.exists() else settings.models_dir / raw
    return ResolvedModel(llm.model, path, _norm(llm.sha256), None)


def check_model(settings: LLMConfig) -> ResolvedModel:
    """The configured model, present and matching its pin, or ModelError saying what to do."""
    resolved = resolve_model(settings)
    if not resolved.path.is_file():
        raise ModelError(f"model file not found: {resolved.path}. {_how_to_get(resolved)}")
    entry = resolved.entry
    size = resolved.path.stat().st_size
    if entry is not None and entry.sha256 and entry.size_bytes and size != entry.size_bytes:
        raise ModelError(
            f"{resolved.path} is {size:,} bytes but {entry.name} is {entry.size_bytes:,} bytes: "
            f"an incomplete or different file; refused. {_how_to_get(resolved)}"
        )
    verify(resolved.path, resolved.expected_sha256)
    return resolved


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
    st = path.stat()
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
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


def pull(name: str | None, settings: LLMConfig) -> Path:
    """Download a catalogue model into ``models_dir`` with huggingface_hub and check its pin.
    Without a network: ModelError naming the exact file to copy in by hand and its SHA-256."""
    name = name or settings.llm.llamacpp.model
    entry = catalogue.get(name)
    if entry is None:
        raise ConfigError(f"unknown model {name!r}; the catalogue has: {', '.join(sorted(catalogue.CATALOGUE))}")
    target = settings.models_dir / entry.filename
    resolved = ResolvedModel(entry.name, target, _norm(entry.sha256), entry)
    if target.is_file():
        try:
            verify(target, entry.sha256)
            return target
        except ModelError:
            log.warning("%s does not match its pin; downloading it again", target)
    hint = _how_to_get(resolved, pull_hint=False)
    # read at call time (huggingface_hub reads it once at import); lets a site use a mirror
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise ModelError(f"cannot download {entry.name}: downloads are switched off (HF_HUB_OFFLINE). {hint}")
    problem = _unreachable(endpoint)
    if problem:
        raise ModelError(f"cannot download {entry.name}: {endpoint} is not reachable ({problem}). {hint}")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    try:
        from huggingface_hub import hf_hub_download

        got = Path(
            hf_hub_download(
                entry.repo_id, entry.filename, revision=entry.revision, local_dir=settings.models_dir,
                endpoint=endpoint, force_download=target.exists(),
            )
        )
    except Exception as e:  # every hub or network failure has the same way out: copy by hand
        raise ModelError(f"downloading {entry.name} from {endpoint} failed: {e}. {hint}") from e
    try:
        verify(got, entry.sha256)
    except ModelError as e:
        got.unlink(missing_ok=True)
        raise ModelError(f"{e} The downloaded file was deleted. {hint}") from None
    return got


def model_status(settings: LLMConfig) -> dict[str, Any]:
    """What ``onsite model status`` shows: the configured model, whether it is present, its size,
    quantization and context length (from the GGUF metadata), and the hash check."""
    resolved = resolve_model(settings)
    entry = resolved.entry
    path = resolved.path
    status: dict[str, Any] = {
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
    if not status["present"]:
        status["message"] = f"model file not found. {_how_to_get(resolved)}"
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
        status["message"] = "the file does not match its SHA-256 pin and will be refused. " + _how_to_get(resolved)
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


def _how_to_get(resolved: ResolvedModel, pull_hint: bool = True) -> str:
    entry = resolved.entry
    pin = resolved.expected_sha256 or "none pinned"
    if entry is None:
        return f"Put the GGUF file at {resolved.path} (expected SHA-256: {pin})."
    text = (
        f"Copy {entry.filename} (from {entry.url} on a machine with internet) by hand to "
        f"{resolved.path} — expected SHA-256: {pin}, {entry.size_bytes or 0:,} bytes."
    )
    if pull_hint:
        text += f" Where a network exists, `onsite model pull {entry.name}` downloads and checks it."
    return text


def _unreachable(endpoint: str, timeout: float = 5.0) -> str | None:
    """A quick TCP probe, so an offline box fails in seconds rather than after the hub client's
    retries. Skipped behind a proxy, where only the proxy knows."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except OSError as e:
        return e.strerror or type(e).__name__


def _norm(sha: str | None) -> str | None:
    return sha.strip().lower() if sha and sha.strip() else None


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
