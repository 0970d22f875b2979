"""The versioned index folder: staging, atomic publish, the builder lock, rollback, pruning.

    index/
      CURRENT              name of the live version (replaced atomically with os.replace)
      build.lock           flock held by the one running builder (freed by the OS if it dies)
      embeddings.sqlite    embedding cache shared by all versions
      versions/v000007/    manifest.json, store.sqlite, vectors.faiss, lexical/
      staging/             half-built versions; anything here is garbage after a crash

A version folder is renamed into ``versions/`` only when complete, and CURRENT is switched
only after that, so a build killed at any instant leaves CURRENT naming a complete version.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from knowledge.errors import IndexBusyError, IndexMissingError, IndexUnavailableError, NoEarlierVersionError

MANIFEST = "manifest.json"
_VERSION = re.compile(r"^v(\d{6})$")


class IndexFolder:
    def __init__(self, root: Path):
        self.root = root
        self.versions_dir = root / "versions"
        self.staging_dir = root / "staging"
        self.current_file = root / "CURRENT"
        self.cache_path = root / "embeddings.sqlite"

    # --- reading ---

    def current(self) -> str | None:
        try:
            name = self.current_file.read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path:
        name = self.current()
        if name is None:
            raise IndexMissingError(f"no index has been built yet in {self.root}: run `onsite index build PATH`")
        return self.versions_dir / name

    def versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if _VERSION.match(p.name) and (p / MANIFEST).is_file())

    def manifest(self, name: str) -> dict[str, Any]:
        return json.loads((self.versions_dir / name / MANIFEST).read_text())

    def verify(self, name: str) -> list[str]:
        """Problems with a version folder (missing or altered files); empty when sound."""
        folder = self.versions_dir / name
        try:
            manifest = self.manifest(name)
        except (OSError, ValueError) as exc:
            return [f"manifest unreadable: {exc}"]
        problems = []
        for rel, digest in manifest.get("checksums", {}).items():
            path = folder / rel
            if not path.is_file():
                problems.append(f"missing {rel}")
            elif file_sha256(path) != digest:
                problems.append(f"checksum mismatch {rel}")
        return problems

    # --- writing ---

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "build.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError("another index build is running; try again when it has finished") from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def new_staging(self) -> tuple[str, Path]:
        """Pick the next version name and an empty staging folder for it (call under the lock)."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.staging_dir.iterdir():  # crashed builds
            shutil.rmtree(leftover, ignore_errors=True)
        numbers = [int(_VERSION.match(p.name).group(1)) for p in self.versions_dir.glob("v*") if _VERSION.match(p.name)] \
            if self.versions_dir.is_dir() else []
        name = f"v{(max(numbers) + 1 if numbers else 1):06d}"
        path = self.staging_dir / name
        path.mkdir()
        return name, path

    def publish(self, name: str, staging: Path) -> Path:
        """Move a complete staging folder into versions/ and make it live."""
        _fsync_tree(staging)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        final = self.versions_dir / name
        os.replace(staging, final)
        _fsync_dir(self.versions_dir)
        self.set_current(name)
        return final

    def set_current(self, name: str) -> None:
        if not (self.versions_dir / name / MANIFEST).is_file():
            raise IndexUnavailableError(f"version {name} does not exist")
        tmp = self.root / "CURRENT.tmp"
        with open(tmp, "w") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.current_file)
        _fsync_dir(self.root)

    def rollback(self) -> str:
        """Make the newest sound version older than the live one live; returns its name."""
        with self.build_lock():
            current = self.current()
            older = [v for v in self.versions() if current is None or v < current]
            for name in reversed(older):
                if not self.verify(name):
                    self.set_current(name)
                    return name
            raise NoEarlierVersionError("no earlier sound version to roll back to")

    def prune(self, keep: int) -> list[str]:
        """Delete all but the ``keep`` newest versions; the live one is always kept."""
        current = self.current()
        versions = self.versions()
        doomed = [v for v in versions[:-keep] if v != current] if keep < len(versions) else []
        for name in doomed:
            # Rename first so a half-deleted folder never looks like a version.
            trash = self.staging_dir / f"deleting-{name}"
            os.replace(self.versions_dir / name, trash)
            shutil.rmtree(trash, ignore_errors=True)
        return doomed


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksum_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    for d in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        _fsync_dir(d)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
