"""Language-model backends behind one ChatModel protocol (see base.py).

``load_chat_model`` is the one place that decides which backend runs: a lookup of
``llm.backend`` in the backend table (backends.py). When the backend cannot be loaded (no model
file, a failed pin, a missing package) the labelled extractive mode answers instead, with the
reason kept so the user is told why.

The package imports nothing heavy on its own: the settings tree reads ``assistant.llm.settings``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.llm.backends import BACKENDS

if TYPE_CHECKING:
    from assistant.llm.base import ChatModel
    from assistant.llm.settings import LLMConfig
    from knowledge.embedding import Embedder

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: ChatModel
    mode: str  # "llm" or "extractive"
    backend: str  # a name from the backend table
    reason: str | None = None  # why extractive mode is in force, when it is


def load_chat_model(settings: LLMConfig, embedder: Embedder | None) -> LoadedModel:
    """The configured backend's model, or extractive mode saying why the backend is not there."""
    from assistant.errors import OnsiteError
    from assistant.llm.extractive import ExtractiveModel

    name = settings.llm.backend
    try:
        model = BACKENDS[name].load(settings, embedder)
    except (OnsiteError, ImportError, OSError, ValueError, RuntimeError) as exc:
        reason = getattr(exc, "user_message", None) or f"{type(exc).__name__}: {exc}"
        log.warning("language model unavailable, answering in extractive mode: %s", reason)
        return LoadedModel(ExtractiveModel(embedder, reason=short_reason(reason)), "extractive", name, reason)
    reason = getattr(model, "reason", None) if model.mode == "extractive" else None
    return LoadedModel(model, model.mode, name, reason)


def short_reason(reason: str) -> str:
    """The first sentence of a reason, for the label on every extract."""
    from assistant.redact import redact_text

    first = redact_text(reason).split(". ")[0].strip()
    return first if len(first) <= 160 else first[:157] + "…"
