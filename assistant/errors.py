"""The small error hierarchy of onsite. Edges (CLI, HTTP, UI) turn these into messages;
``user_message`` is what a person on the floor reads."""

from __future__ import annotations


class OnsiteError(Exception):
    """Base class: something the user can be told about in plain words."""

    http_status = 500

    @property
    def user_message(self) -> str:
        return str(self)


class ConfigError(OnsiteError):
    """A setting is wrong or a required file / model / extra is missing."""

    http_status = 500


class IngestError(OnsiteError):
    """One document could not be loaded. The batch goes on without it."""

    http_status = 422

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnsupportedFileError(IngestError):
    """The file type is not one we read."""


class IndexError_(OnsiteError):
    """The index is missing, corrupt or busy."""

    http_status = 503


class IndexMissingError(IndexError_):
    """No published index version exists yet."""


class IndexBusyError(IndexError_):
    """Another build holds the builder lock."""

    http_status = 409


class ValidationError(OnsiteError):
    """Arguments out of bounds or malformed."""

    http_status = 400
