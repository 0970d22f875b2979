"""The REST API (FastAPI) behind ``onsite serve``: envelope, auth, limits, metrics, probes.

Import from the submodules; ``create_app`` is re-exported here lazily so that importing
``assistant.api.metrics`` from the service layer does not pull in FastAPI routing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from assistant.api.app import create_app

        return create_app
    raise AttributeError(name)
