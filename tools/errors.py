"""The errors of the tools package: sensors, inspection, work orders and the site profile.

``user_message`` is what a person reads. The faces map these classes to their own messages
and HTTP statuses (``assistant/errors.py``); nothing here knows about HTTP.
"""

from __future__ import annotations


class ToolError(Exception):
    """Base class: something the user can be told about in plain words."""

    @property
    def user_message(self) -> str:
        return str(self)


class ToolConfigError(ToolError):
    """A tool's configuration (the site profile, a product model) is missing or inconsistent."""


class ToolInputError(ToolError):
    """Arguments, files or values a tool was given are out of bounds or malformed."""


class ToolConflictError(ToolError):
    """The request does not fit the current state (e.g. deciding an order that was decided)."""


class NotFoundError(ToolError):
    """A sensor, photo, product or work order asked for does not exist."""


class ToolBusyError(ToolError):
    """Too many requests of this kind at once (e.g. inspections); try again shortly."""

    def __init__(self, message: str, retry_after_s: float = 3.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s
