"""The model an evaluation runs with: ``--model NAME_OR_PATH`` (a catalogue name or a .gguf
path, through llama.cpp), or, without it, whatever the settings configure. An evaluation that
asked for a model and could not load it fails: silently measuring extractive mode instead would
report the wrong system."""

from __future__ import annotations

from typing import Any

from assistant.errors import ConfigError
from assistant.llm import LoadedModel, load_chat_model
from assistant.settings import Settings
from knowledge.embedding import Embedder


def settings_for(settings: Settings, model: str | None) -> Settings:
    if not model:
        return settings
    llm = settings.llm.model_copy(update={
        "backend": "llamacpp", "llamacpp": settings.llm.llamacpp.model_copy(update={"model": model})})
    return settings.model_copy(update={"llm": llm})


def load_eval_model(settings: Settings, model: str | None, embedder: Embedder | None) -> tuple[Settings, LoadedModel]:
    settings = settings_for(settings, model)
    loaded = load_chat_model(settings, embedder)
    if model and loaded.mode != "llm":
        raise ConfigError(f"cannot evaluate with model {model!r}: {loaded.reason}")
    return settings, loaded


def model_label(settings: Settings, loaded: LoadedModel) -> str:
    """What the report names: the model file, or "extractive"."""
    if loaded.mode != "llm":
        return "extractive"
    name: Any = getattr(loaded.model, "name", None) or settings.llm.llamacpp.model
    return str(name)
