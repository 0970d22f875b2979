"""The backend table: backend name → its options model and a loader that builds its ChatModel.

This is the one list of backends. The allowed values of ``llm.backend``, the ``[llm.<name>]``
settings sections and their documentation are derived from it (``assistant/llm/settings.py``),
and ``load_chat_model`` is a lookup in it. Adding a backend is one module (its ChatModel) and one
entry here: an options model (``extra="forbid"``) and a loader.

Loaders import their implementation, and through it llama_cpp / httpx, only when called; this
module itself imports nothing heavier than pydantic, so the settings tree can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from assistant.llm.base import ChatModel
    from assistant.llm.settings import LLMConfig
    from knowledge.embedding import Embedder

# The reason extractive mode gives when it was chosen, not fallen back to.
EXTRACTIVE_CONFIGURED = "extractive mode is configured"


class BackendOptions(BaseModel):
    """Base of the per-backend options: unknown keys are errors that name themselves."""

    model_config = ConfigDict(extra="forbid")


class LlamaCppOptions(BackendOptions):
    """``[llm.llamacpp]``: a GGUF file run in this process by llama.cpp."""

    model: str = Field(
        "auto",
        description="A name from the model catalogue (assistant/llm/catalogue.py), a path to a .gguf file, or auto: "
        "the first model of the catalogue's preference list whose verified file is present.",
    )
    sha256: str | None = Field(
        None, description="Pin for a GGUF given by path; catalogue models carry their own pin. A mismatch is refused."
    )
    n_ctx: int = Field(4096, ge=512, le=131072, description="Context window in tokens.")
    n_batch: int = Field(512, ge=8, le=8192, description="Prompt tokens evaluated per batch.")
    threads: int | None = Field(None, ge=1, description="Generation threads; None = physical cores.")


class OpenAIOptions(BackendOptions):
    """``[llm.openai]``: any server that speaks the OpenAI chat-completions protocol."""

    base_url: str = Field("http://127.0.0.1:8080/v1", description="OpenAI-compatible server base URL.")
    api_key: str | None = Field(None, description="Bearer key for the OpenAI-compatible server.")
    model: str = Field("default", description="Model name sent to the OpenAI-compatible server.")
    timeout_s: float = Field(60.0, gt=0, description="HTTP timeout per request.")
    retries: int = Field(2, ge=0, le=10, description="Retries on connection errors and 5xx.")


class ExtractiveOptions(BackendOptions):
    """``[llm.extractive]``: nothing to set; no model is loaded."""


@dataclass(frozen=True)
class Backend:
    """One row of the table. ``load`` may raise (OnsiteError, ImportError, OSError, ...):
    ``load_chat_model`` then falls back to extractive mode and keeps the reason."""

    options: type[BackendOptions]
    load: Callable[[LLMConfig, Embedder | None], ChatModel]
    summary: str  # one line for the settings documentation


def _load_llamacpp(config: LLMConfig, embedder: Embedder | None) -> ChatModel:
    from assistant.llm.llamacpp import LlamaCppChatModel
    from assistant.llm.management import check_model

    resolved = check_model(config)  # present and matching its pin, or a ModelError saying what to do
    return LlamaCppChatModel(config.llm, resolved.path)


def _load_openai(config: LLMConfig, embedder: Embedder | None) -> ChatModel:
    from assistant.llm.openai_compat import OpenAICompatChatModel

    return OpenAICompatChatModel(config.llm)


def _load_extractive(config: LLMConfig, embedder: Embedder | None) -> ChatModel:
    from assistant.llm.extractive import ExtractiveModel

    return ExtractiveModel(embedder, reason=EXTRACTIVE_CONFIGURED)


BACKENDS: dict[str, Backend] = {
    "llamacpp": Backend(LlamaCppOptions, _load_llamacpp, "a GGUF file in-process"),
    "openai": Backend(OpenAIOptions, _load_openai, "any OpenAI-compatible server"),
    "extractive": Backend(ExtractiveOptions, _load_extractive, "no model, answers are labelled extracts of the "
                          "evidence"),
}
