"""The backend table and the settings derived from it: sections, allowed names, typos, lookup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.llm import load_chat_model
from assistant.llm.backends import BACKENDS, Backend, ExtractiveOptions, LlamaCppOptions, OpenAIOptions
from assistant.llm.base import FakeChatModel, ModelError
from assistant.llm.settings import LLMSettings
from assistant.settings import Settings


@dataclass
class Config:
    """The least an LLMConfig needs: the llm settings and where model files live."""

    llm: LLMSettings
    models_dir: Path


@pytest.fixture
def toml(tmp_path, monkeypatch):
    """toml(text) → Settings() read with that onsite.toml."""

    def read(text: str) -> Settings:
        path = tmp_path / "onsite.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("ONSITE_CONFIG", str(path))
        return Settings(home=tmp_path)

    return read


def _errors(info: pytest.ExceptionInfo) -> list[tuple[tuple, str]]:
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_defaults_are_unchanged():
    llm = LLMSettings()
    assert (llm.backend, llm.max_tokens, llm.temperature, llm.queue_depth, llm.deadline_s) == (
        "llamacpp", 512, 0.2, 8, 120.0)
    assert llm.llamacpp == LlamaCppOptions(model="auto", sha256=None, n_ctx=4096,
                                           n_batch=512, threads=None)
    assert llm.openai == OpenAIOptions(base_url="http://127.0.0.1:8080/v1", api_key=None, model="default",
                                       timeout_s=60.0, retries=2)


def test_sections_allowed_names_and_docs_come_from_the_table():
    sections = {name: f.annotation for name, f in LLMSettings.model_fields.items() if name in BACKENDS}
    assert sections == {name: backend.options for name, backend in BACKENDS.items()}
    doc = LLMSettings.model_fields["backend"].description
    assert all(f"{name}: {backend.summary}" in doc for name, backend in BACKENDS.items())
    for name in BACKENDS:
        assert LLMSettings(backend=name).backend == name


def test_unknown_backend_is_refused_listing_the_known_ones():
    with pytest.raises(ValidationError) as info:
        LLMSettings(backend="vllm")
    [(loc, msg)] = _errors(info)
    assert loc == ("backend",) and "unknown backend 'vllm'" in msg
    assert f"known backends: {', '.join(BACKENDS)}" in msg


def test_nested_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("ONSITE_LLM__BACKEND", "openai")
    monkeypatch.setenv("ONSITE_LLM__OPENAI__BASE_URL", "http://10.0.0.5:8000/v1")
    monkeypatch.setenv("ONSITE_LLM__OPENAI__RETRIES", "0")
    monkeypatch.setenv("ONSITE_LLM__LLAMACPP__N_CTX", "8192")
    llm = Settings(home=tmp_path).llm
    assert llm.backend == "openai" and llm.openai.base_url == "http://10.0.0.5:8000/v1" and llm.openai.retries == 0
    assert llm.llamacpp.n_ctx == 8192 and llm.openai.model == "default"


def test_toml_sections(toml):
    llm = toml('[llm]\nbackend = "openai"\nqueue_depth = 2\n[llm.openai]\nbase_url = "http://gpu-box:8000/v1"\n'
               '[llm.llamacpp]\nthreads = 2\n').llm
    assert (llm.backend, llm.queue_depth, llm.openai.base_url, llm.llamacpp.threads) == (
        "openai", 2, "http://gpu-box:8000/v1", 2)


def test_a_typo_under_llm_is_an_error_naming_the_key(toml):
    with pytest.raises(ValidationError) as info:
        toml('[llm]\ntemprature = 0.5\n')
    assert _errors(info) == [(("llm", "temprature"), "Extra inputs are not permitted")]


def test_a_typo_under_llm_openai_is_an_error_naming_the_key(toml):
    with pytest.raises(ValidationError) as info:
        toml('[llm.openai]\nbase_ur = "http://gpu-box:8000/v1"\n')
    assert _errors(info) == [(("llm", "openai", "base_ur"), "Extra inputs are not permitted")]


def test_a_key_of_the_former_flat_spelling_says_where_it_went(toml, monkeypatch, tmp_path):
    with pytest.raises(ValidationError, match=r"llm.openai_base_url has moved: set llm.openai.base_url "
                                              r"\(ONSITE_LLM__OPENAI__BASE_URL\)"):
        toml('[llm]\nopenai_base_url = "http://gpu-box:8000/v1"\n')
    monkeypatch.delenv("ONSITE_CONFIG")
    monkeypatch.setenv("ONSITE_LLM__N_CTX", "8192")
    with pytest.raises(ValidationError, match=r"llm.n_ctx has moved: set llm.llamacpp.n_ctx"):
        Settings(home=tmp_path)
    with pytest.raises(ValidationError, match=r"llm.model has moved: set llm.llamacpp.model .* or llm.openai.model"):
        LLMSettings(model="qwen2.5-0.5b-instruct-q4_k_m")


def test_options_bounds_still_hold():
    with pytest.raises(ValidationError, match="llamacpp.n_ctx"):
        LLMSettings(llamacpp={"n_ctx": 10})
    with pytest.raises(ValidationError, match="openai.retries"):
        LLMSettings(openai={"retries": 11})


# -- load_chat_model is a lookup in the table ------------------------------------------------------


def test_a_backend_added_to_the_table_is_loaded_by_name(monkeypatch, tmp_path):
    fake = FakeChatModel(["hello"])
    monkeypatch.setitem(BACKENDS, "scripted", Backend(ExtractiveOptions, lambda config, embedder: fake, "a script"))
    loaded = load_chat_model(Config(LLMSettings(backend="scripted"), tmp_path), None)
    assert (loaded.model, loaded.mode, loaded.backend, loaded.reason) == (fake, "llm", "scripted", None)


def test_a_backend_that_fails_to_load_falls_back_to_extractive_with_the_reason(monkeypatch, tmp_path):
    def broken(config, embedder):
        raise ModelError("the model server is switched off. Start it with `make model-server`")

    monkeypatch.setitem(BACKENDS, "broken", Backend(ExtractiveOptions, broken, "always fails"))
    loaded = load_chat_model(Config(LLMSettings(backend="broken"), tmp_path), None)
    assert loaded.mode == "extractive" and loaded.backend == "broken"
    assert loaded.reason == "the model server is switched off. Start it with `make model-server`"
    assert loaded.model.reason == "the model server is switched off"  # the first sentence labels each extract


def test_the_configured_extractive_backend_and_a_missing_gguf(tmp_path):
    loaded = load_chat_model(Config(LLMSettings(backend="extractive"), tmp_path), None)
    assert (loaded.mode, loaded.backend, loaded.reason) == ("extractive", "extractive", "extractive mode is configured")
    missing = load_chat_model(Config(LLMSettings(), tmp_path / "models"), None)
    assert missing.mode == "extractive" and missing.backend == "llamacpp"
    assert "no model file found for 'auto'" in missing.reason and str(tmp_path / "models") in missing.reason
    assert "qwen2.5-coder-1.5b-instruct-q4_k_m" in missing.reason and "onsite model pull" in missing.reason


def test_openai_backend_loads_without_contacting_the_server(tmp_path):
    llm = LLMSettings(backend="openai", openai={"base_url": "http://127.0.0.1:9/v1", "model": "site-model"})
    loaded = load_chat_model(Config(llm, tmp_path), None)
    assert (loaded.mode, loaded.backend, loaded.model.name) == ("llm", "openai", "openai:site-model")
    loaded.model.close()
