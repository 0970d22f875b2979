"""Real llama.cpp on models the tests write: a tiny random-weight Qwen2 GGUF (ms to load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.llm.gguf_synth import write_tiny_model
from assistant.llm.settings import LLMSettings


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~0.5 MB Qwen2-architecture GGUF: byte-level BPE vocabulary, ChatML chat template."""
    return write_tiny_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
def tiny_settings() -> LLMSettings:
    # One thread: a two-thread barrier on a shared 2-core box stalls whenever a neighbour runs.
    return LLMSettings(llamacpp={"n_ctx": 2048, "n_batch": 64, "threads": 1}, queue_depth=2, deadline_s=30)


def with_llamacpp(settings: LLMSettings, **options) -> LLMSettings:
    """A copy of ``settings`` with some ``llm.llamacpp`` options changed."""
    return settings.model_copy(update={"llamacpp": settings.llamacpp.model_copy(update=options)})
