"""The data home is private: folders 0700, files 0600, whatever the operator's umask.

The home holds conversations, the audit log, uploads, documents, the index and the token key;
none of it is for other accounts on the machine. Three layers: the home (and its data folders)
0700, so nothing inside can be reached by others even if a file's own mode is loose; each SQLite
database created 0600 before SQLite opens it (SQLite gives its -wal / -shm / -journal files the
database's mode); and the serving process's umask 077, so everything else it writes (index
versions, uploads, caches, locks) is born private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def restrict_umask() -> int:
    """Set the process umask to 077 (files 0600, folders 0700 from now on); returns the old one."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) and make it 0700. Parents that exist are left alone;
    those created here are private as well."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        os.chmod(p, 0o700)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty if missing, 0600 (an existing file is tightened to 0600, content
    untouched), with its folder 0700 when created here. For a SQLite file its side files too."""
    path = Path(path)
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # umask-independent, and an old 0644 file from an earlier version
    finally:
        os.close(fd)
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)
    return path
