"""The assistant's errors, and the one place where every package's errors meet the faces.

Each package owns a small hierarchy (``knowledge.errors``, ``tools.errors``, this module for
the agent and its faces); ``user_message`` is what a person on the floor reads. The faces turn
any of them into an HTTP status, an error kind and a message with ``http_status`` and
``error_kind`` below — the parts below the agent know nothing about HTTP.
"""

from __future__ import annotations

import re

from knowledge import errors as knowledge_errors
from knowledge.errors import (DocumentRejectedError, DocumentTooLargeError, IndexBusyError, IndexUnavailableError,
                              IngestError, KnowledgeConfigError, KnowledgeError, NoEarlierVersionError,
                              NothingToIndexError, UnsupportedDocumentError)
from tools import errors as tool_errors
from tools.errors import ToolBusyError, ToolConfigError, ToolConflictError, ToolError, ToolInputError


class OnsiteError(Exception):
    """Base class of the assistant's own errors: something the user can be told in plain words."""

    http_status = 500

    @property
    def user_message(self) -> str:
        return str(self)


class ConfigError(OnsiteError):
    """A setting is wrong or a required file / model / extra is missing."""

    http_status = 500


class ValidationError(OnsiteError):
    """Arguments out of bounds or malformed."""

    http_status = 400


class NotFoundError(OnsiteError):
    """The thing asked for does not exist (404)."""

    http_status = 404
    error_kind = "not_found"


# Every error a person can be told about, whichever package raised it.
USER_ERRORS: tuple[type[Exception], ...] = (OnsiteError, KnowledgeError, ToolError)

# The parts' errors at the edge: the most specific class wins.
_HTTP_STATUS: dict[type[Exception], int] = {
    KnowledgeError: 500,
    KnowledgeConfigError: 500,
    IngestError: 422,
    NothingToIndexError: 400,
    IndexUnavailableError: 503,
    IndexBusyError: 409,
    NoEarlierVersionError: 409,
    knowledge_errors.NotFoundError: 404,
    DocumentRejectedError: 400,
    UnsupportedDocumentError: 415,
    DocumentTooLargeError: 413,
    ToolError: 500,
    ToolConfigError: 500,
    ToolInputError: 400,
    ToolConflictError: 409,
    tool_errors.NotFoundError: 404,
    ToolBusyError: 429,
}


def http_status(exc: BaseException) -> int:
    """The HTTP status a face answers ``exc`` with (500 for anything unknown)."""
    own = getattr(exc, "http_status", None)
    if own:
        return int(own)
    for cls in type(exc).__mro__:
        if cls in _HTTP_STATUS:
            return _HTTP_STATUS[cls]
    return 500


def error_kind(exc: BaseException) -> str:
    """The machine-readable kind of ``exc``: its own ``error_kind``, else from the class name
    ('IndexBusyError' -> 'index_busy')."""
    return str(getattr(exc, "error_kind", None) or kind_of(type(exc).__name__))


def kind_of(name: str) -> str:
    """'ModelBusyError' -> 'model_busy', 'Too Many Requests' -> 'too_many_requests'."""
    name = name.rstrip("_")
    if name.endswith("Error") and name != "Error":
        name = name[: -len("Error")]
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "error"


def user_message(exc: BaseException) -> str:
    """What a person reads about ``exc``."""
    return getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
