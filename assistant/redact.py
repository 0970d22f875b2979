"""Folders out of what strangers read: ``/home/op/.onsite/models/x.gguf`` → ``x.gguf``.

Model and index messages name files by their full path, which the admin needs in the log and in
``onsite model status``; an answer's label, the chat page and the unauthenticated ``/readyz``
show only the file's name (where the server keeps its data is nobody else's business)."""

from __future__ import annotations

import re
from typing import Any

# An absolute POSIX path with at least one folder (not inside a URL or a longer word), or a
# Windows drive path; group 1 is the last part.
_PATH = re.compile(r"(?<![\w.:/~\\-])(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"`,;()<>\[\]]+)*[/\\]([^\s/\\'\"`,;()<>\[\]]+)")


def redact_text(text: str) -> str:
    return _PATH.sub(lambda m: m[1] if _is_path(m[0]) else m[0], text)


def _is_path(found: str) -> bool:
    # "/" alone, "and/or" and a lone "/ui" are not folders; two parts or a drive / home prefix are
    # ("/path/to/…" in a how-to is a placeholder, kept).
    if found.startswith("/path/to/"):
        return False
    return found.count("/") + found.count("\\") >= 2 or found[:1] == "~" or found[1:2] == ":"


def redact_paths(value: Any) -> Any:
    """``value`` with every absolute path in its strings cut to the file name (dicts and lists too)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_paths(v) for v in value]
    return value
