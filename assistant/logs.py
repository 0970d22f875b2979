"""Logging for the command line and the server: warnings by default, our own INFO when serving,
and no library chatter.

bm25s sets its own logger to DEBUG when it is imported (``logger.setLevel(logging.DEBUG)``), so a
level set before that import is overwritten and every index build printed ``DEBUG:bm25s``
lines. A filter on the root handlers drops such records whatever the import order.
"""

from __future__ import annotations

import logging
import sys

OURS = ("onsite", "assistant", "knowledge", "tools")
# Libraries whose records below WARNING never reach the output.
QUIET = ("bm25s", "jieba", "httpx", "httpcore", "faiss", "urllib3", "filelock", "PIL")


class QuietLibraries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == name or record.name.startswith(name + ".") for name in QUIET)


def setup_logging(level: int = logging.WARNING) -> None:
    """The process's logging: ``level`` on stderr, library chatter filtered (idempotent)."""
    logging.basicConfig(level=level, stream=sys.stderr)
    quiet_libraries()


def quiet_libraries() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietLibraries) for f in handler.filters):
            handler.addFilter(QuietLibraries())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)  # also for libraries imported already


def show_our_info() -> None:
    """The server's view: our INFO lines (progress, backfill, model fetch), libraries quiet."""
    if not logging.getLogger().handlers:
        setup_logging()
    for name in OURS:
        logging.getLogger(name).setLevel(logging.INFO)
    quiet_libraries()
