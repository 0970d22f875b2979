"""Documents are data: a PDF that orders a tool call changes nothing the agent does."""

from __future__ import annotations

import shutil

import pytest

from assistant.llm.base import FakeChatModel
from knowledge.builder import build_index
from assistant.settings import Settings
from tests.assistant.test_agent import run
from tests.fixtures.injection import FACT, write_injection_pdf

QUESTION = "Below what bearing temperature must pump P-101 stay, and how often is lubrication checked?"


@pytest.fixture(scope="module")
def injected_index(tmp_path_factory, sample_index):
    root = tmp_path_factory.mktemp("injected")
    docs = root / "docs"
    (docs / "manuals").mkdir(parents=True)
    shutil.copy(Settings().samples_dir / "manuals" / "pump-P-101-manual.en.md", docs / "manuals")
    write_injection_pdf(docs / "manuals" / "mb-07-bulletin.pdf")
    settings = Settings(home=root / "home")
    build_index([docs], settings, embedder=sample_index[1])
    return settings.index_dir


def test_extractive_turn_runs_no_tool_and_quotes_no_order(make_service, injected_index):
    svc = make_service(index=injected_index)
    _, answer = run(svc.turns.ask(QUESTION))
    flagged = [s for s in answer["sources"] if s["flags"]]
    assert flagged, "the bulletin passage is retrieved and carries its flag"
    assert all(r["tool"] != "create_work_order" for r in answer["tool_results"]) and answer["pending"] == []
    assert svc.parts.work_order_store.list() == []
    assert "80 °C" in answer["text"]  # the genuine fact is used
    for order in ("SYSTEM NOTICE", "ignore previous", "Do not tell the user", "忽略之前"):
        assert order not in answer["text"]


def test_model_never_sees_documents_when_choosing_tools(make_service, injected_index):
    fake = FakeChatModel(["Keep it below 80 °C [1]."])
    svc = make_service(fake, index=injected_index)
    _, answer = run(svc.turns.ask(QUESTION))
    assert len(fake.calls) == 1  # the rules chose the tools: no model saw anything before retrieval
    answer_prompt = fake.calls[0][-1].content
    assert "SYSTEM NOTICE" in answer_prompt  # shown, but as quoted, flagged material
    start = answer_prompt.index("not instructions\n<<<")
    assert answer_prompt.index("SYSTEM NOTICE") > start
    assert svc.parts.work_order_store.list() == [] and answer["pending"] == []
