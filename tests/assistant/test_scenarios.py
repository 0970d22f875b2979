"""The sample site, end to end in extractive mode (no model): live sensor data from the
simulator, the sample documents, the audit log and the terminal command."""

from __future__ import annotations

from assistant.types import Decision
from tests.assistant.test_agent import run


def source_file(answer, n) -> str:
    return next(s for s in answer["sources"] if s["n"] == n).get("source") or ""


def test_greenhouse_temperature_uses_the_sensor_and_the_crop_guide(make_service):
    svc = make_service(simulate_hours=12)
    _, answer = run(svc.turns.ask("温室2号现在温度正常吗？", user="op-wang"))
    assert [(r["tool"], r["args"]) for r in answer["tool_results"]] == [("sensor_latest", {"target": "GH-2-TEMP"})]
    assert answer["tool_results"][0]["ok"] and answer["status"] == "answered"
    cited_kinds = {next(s["kind"] for s in answer["sources"] if s["n"] == n) for n in answer["cited"]}
    assert cited_kinds == {"tool", "document"}
    assert any(source_file(answer, n).endswith("tomato-greenhouse-guide.zh.md") for n in answer["cited"])
    assert answer["text"].startswith("以下为文档原文摘录")  # extractive mode is labelled, in Chinese
    assert all(c["ok"] for c in answer["checks"])
    row = svc.parts.audit.turns(answer["thread_id"])[0]
    assert row["user"] == "op-wang" and row["tools"][0]["tool"] == "sensor_latest" and row["evidence_ids"]
    assert row["status"] == "answered" and row["mode"] == "extractive" and row["timings"]["retrieve"] > 0


def test_rising_vibration_uses_history_the_manual_and_proposes_a_work_order(make_service):
    svc = make_service(simulate_hours=48, faults=["bearing_wear"])
    events, answer = run(svc.turns.ask("P-101 vibration is rising, what should I check?", thread_id="p101"))
    history = answer["tool_results"][0]
    assert history["tool"] == "sensor_history" and history["args"]["sensor_id"] == "VT-101" and history["ok"]
    assert any(source_file(answer, n).endswith("pump-P-101-manual.en.md") for n in answer["cited"])
    assert answer["pending"][0]["tool"] == "create_work_order" and svc.parts.work_order_store.list() == []
    _, done = run(svc.turns.resume("p101", Decision(True, "supervisor-li")))
    assert [o.asset for o in svc.parts.work_order_store.list(status="pending")] == ["P-101"]
    assert done["pending"] == []


def test_follow_up_without_a_model_keeps_the_zone(make_service):
    svc = make_service(simulate_hours=6)
    run(svc.turns.ask("温室2号现在温度正常吗？", thread_id="f1"))
    _, answer = run(svc.turns.ask("那湿度呢？", thread_id="f1"))
    assert [r["args"] for r in answer["tool_results"]] == [{"target": "GH-2-RH"}]


def test_onsite_ask_streams_the_answer_with_sources(sample_index, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    home = tmp_path / "home"
    home.mkdir()
    (home / "index").symlink_to(sample_index[0], target_is_directory=True)
    monkeypatch.setenv("ONSITE_HOME", str(home))
    monkeypatch.setenv("ONSITE_LLM__BACKEND", "extractive")
    result = CliRunner().invoke(app, ["ask", "How do I lock out the pump before opening it?"])
    assert result.exit_code == 0, result.output
    assert "Extract from the documents" in result.output and "[answered · extractive]" in result.output
    assert "lockout-tagout-procedure.en.md" in result.output or "pump-P-101-manual.en.md" in result.output
    as_json = CliRunner().invoke(app, ["ask", "What is the capital of France?", "--json"])
    import json

    assert json.loads(as_json.output)["status"] == "abstained"
