"""Language-model backends behind one ChatModel protocol (see base.py).

``load_chat_model`` is the one place that decides which backend runs: the configured GGUF
in-process, an OpenAI-compatible server, or — when no model is configured or it cannot be
loaded — the labelled extractive mode, with the reason kept so the user is told why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from assistant.errors import OnsiteError
from assistant.llm.base import ChatModel
from assistant.settings import Settings
from knowledge.embedding import Embedder

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: ChatModel
    mode: str  # "llm" or "extractive"
    backend: str  # "llamacpp", "openai" or "extractive"
    reason: str | None = None  # why extractive mode is in force, when it is


def load_chat_model(settings: Settings, embedder: Embedder | None) -> LoadedModel:
    from assistant.llm.extractive import ExtractiveModel

    backend = settings.llm.backend
    if backend == "extractive":
        reason = "extractive mode is configured"
        return LoadedModel(ExtractiveModel(embedder, reason=reason), "extractive", "extractive", reason)
    try:
        if backend == "openai":
            from assistant.llm.openai_compat import OpenAICompatChatModel

            return LoadedModel(OpenAICompatChatModel(settings.llm), "llm", "openai")
        from assistant.llm.management import check_model

        resolved = check_model(settings)  # present and matching its pin, or a ModelError saying what to do
        from assistant.llm.llamacpp import LlamaCppChatModel

        return LoadedModel(LlamaCppChatModel(settings.llm, resolved.path), "llm", "llamacpp")
    except (OnsiteError, ImportError, OSError, ValueError, RuntimeError) as exc:
        reason = getattr(exc, "user_message", None) or f"{type(exc).__name__}: {exc}"
        log.warning("language model unavailable, answering in extractive mode: %s", reason)
        return LoadedModel(ExtractiveModel(embedder, reason=_short(reason)), "extractive", backend, reason)


def _short(reason: str) -> str:
    """The first sentence of a reason, for the label on every extract."""
    first = reason.split(". ")[0].strip()
    return first if len(first) <= 160 else first[:157] + "…"
