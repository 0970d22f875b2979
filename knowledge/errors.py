"""The errors of the knowledge package: documents in, evidence out.

``user_message`` is what a person reads. The faces (CLI, REST API, page) map these classes to
their own messages and HTTP statuses (``assistant/errors.py``); nothing here knows about HTTP.
"""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base class: something the user can be told about in plain words."""

    @property
    def user_message(self) -> str:
        return str(self)


class KnowledgeConfigError(KnowledgeError):
    """A knowledge setting is wrong or a required model folder / extra is missing."""


class IngestError(KnowledgeError):
    """One document could not be loaded. The batch goes on without it."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnsupportedFileError(IngestError):
    """The file type is not one we read."""


class NothingToIndexError(KnowledgeError):
    """A build was asked for with no sources and no earlier build to take them from."""


class IndexUnavailableError(KnowledgeError):
    """The index is missing, damaged or busy."""


class IndexMissingError(IndexUnavailableError):
    """No published index version exists yet."""


class IndexBusyError(IndexUnavailableError):
    """Another build holds the builder lock."""


class NoEarlierVersionError(IndexUnavailableError):
    """A rollback found no sound version older than the live one."""


class NotFoundError(KnowledgeError):
    """A document, job or version asked for does not exist."""


class DocumentRejectedError(KnowledgeError):
    """An uploaded document is refused before it is stored (empty, unsafe name, ignored name)."""


class UnsupportedDocumentError(DocumentRejectedError):
    """Not a document type we index, or the bytes do not match the type."""


class DocumentTooLargeError(DocumentRejectedError):
    """An uploaded document is over the size limit."""
