"""Extractive mode with the real bundled embedder: labelled, cited, verbatim, never invented."""

import re

import pytest

from assistant.llm import load_chat_model
from assistant.llm.base import ModelError
from assistant.llm.extractive import ExtractiveModel
from assistant.settings import Settings
from knowledge.builder import build_index
from knowledge.embedding import make_embedder
from knowledge.retrieval import Retriever
from tests.knowledge.conftest_index import write_corpus


@pytest.fixture(scope="module")
def embedder():
    return make_embedder(Settings().embedding)


@pytest.fixture(scope="module")
def retriever(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("kb")
    s = Settings(home=tmp / "home")
    build_index([write_corpus(tmp)], s, embedder=embedder)
    return Retriever(s, embedder=embedder)


def test_extract_is_labelled_cited_and_verbatim(retriever, embedder):
    question = "How often must the drive-end bearing be greased?"
    evidence = retriever.search(question, k=5)
    extract = ExtractiveModel(embedder, reason="no model file").answer(question, evidence)
    first_line, body = extract.text.split("\n", 1)
    assert first_line == "Extract from the documents, no language model wrote it (no model file):"
    assert 1 <= len(extract.sentences) <= 3
    for sentence, n in extract.sentences:
        assert f"{sentence} [{n}]" in body
        assert sentence in extract.citations[n - 1].chunk.text  # quoted, not generated
    assert "2000 operating hours" in body
    assert set(int(n) for n in re.findall(r"\[(\d+)\]", body)) == set(range(1, len(extract.citations) + 1))


def test_chinese_question_gets_a_chinese_label(retriever, embedder):
    question = "有限空间作业前氧含量应在什么范围？"
    extract = ExtractiveModel(embedder).answer(question, retriever.search(question, k=5))
    assert extract.text.startswith("以下为文档原文摘录") and extract.lang == "zh"
    assert any("19.5%至23.5%" in s for s, _ in extract.sentences)


def test_no_evidence_gives_only_the_label(embedder):
    extract = ExtractiveModel(embedder).answer("anything", [])
    assert extract.sentences == [] and extract.citations == [] and "no language model" in extract.text


def test_missing_model_file_falls_back_to_labelled_extractive_mode(tmp_path, embedder):
    s = Settings(home=tmp_path, llm={"llamacpp": {"model": "qwen2.5-1.5b-instruct-q4_k_m"}})
    loaded = load_chat_model(s, embedder)
    assert loaded.mode == "extractive" and loaded.backend == "llamacpp"
    assert str(s.models_dir) in loaded.reason and "qwen2.5-1.5b-instruct-q4_k_m.gguf" in loaded.reason
    assert "model file not found" in loaded.model.reason
    with pytest.raises(ModelError, match="no language model is loaded"):
        list(loaded.model.stream([]))


def test_extractive_backend_is_explicit(tmp_path, embedder):
    loaded = load_chat_model(Settings(home=tmp_path, llm={"backend": "extractive"}), embedder)
    assert loaded.mode == "extractive" and loaded.reason == "extractive mode is configured"


def test_a_present_gguf_matching_its_pin_loads_as_a_language_model(tmp_path, embedder, tiny_gguf):
    from assistant.llm.base import ChatMessage, collect
    from assistant.llm.management import sha256_of

    s = Settings(home=tmp_path, llm={"llamacpp": {"model": str(tiny_gguf), "sha256": sha256_of(tiny_gguf), "n_ctx": 512}})
    loaded = load_chat_model(s, embedder)
    assert loaded.mode == "llm" and loaded.backend == "llamacpp" and loaded.reason is None
    text, done = collect(loaded.model.stream([ChatMessage("user", "hello")], None))
    assert done.kind == "done" and done.usage.completion_tokens > 0


def test_a_gguf_failing_its_pin_is_refused_and_extractive_mode_says_why(tmp_path, embedder, tiny_gguf):
    s = Settings(home=tmp_path, llm={"llamacpp": {"model": str(tiny_gguf), "sha256": "0" * 64}})
    loaded = load_chat_model(s, embedder)
    assert loaded.mode == "extractive" and "SHA-256" in loaded.reason.upper().replace("SHA256", "SHA-256")
