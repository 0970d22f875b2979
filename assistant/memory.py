"""Keep the server's memory flat under many threads (glibc only; a no-op elsewhere).

glibc gives each thread that allocates concurrently its own malloc arena, up to 8 per core, and
an arena keeps what it freed. The server runs every request and turn on pool threads, so under load
freed memory piles up in a dozen arenas and the RSS creeps up while the Python heap stays flat
(measured in a 30-client soak). Two arenas is what ``MALLOC_ARENA_MAX=2`` gives other Python
servers; ``mallopt`` sets it from inside the process, before the request threads start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` unless ``MALLOC_ARENA_MAX`` already says; True when set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # the operator chose
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_ARENA_MAX, int(arenas)) == 1
    if ok:
        log.debug("malloc arenas capped at %d", arenas)
    return ok
