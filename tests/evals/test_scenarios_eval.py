"""The live-data scenario set (evals/scenarios/scenarios.jsonl) and `onsite eval scenarios`:
the claim judge on fixed answers in both languages, the truth taken from a real simulated
store through the real sensor tools, and a small run through the agent in extractive mode
(the full set and the command line are slow)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from assistant.settings import Settings
from evals.scenarios import (
    SCENARIO_FILE, Claim, Scenario, Truth, clock_of, judge, load_scenarios, score, simulate_into, target_names, truth_of,
    value_stated,
)
from tools.base import ToolRegistry
from tools.sensors.store import SensorStore
from tools.sensors.tools import SensorHistory, SensorLatest, SiteCheck
from tools.site import load_site_profile

SITE = load_site_profile(Settings().site_profile)
SCENARIOS = {s.id: s for s in load_scenarios()}


def claims(text: str, target: str | None) -> list[str]:
    names, others, metric, strong = target_names(SITE, target)
    return judge(text, names, others, metric, strong).statuses


# ---------------------------------------------------------------- the set itself

def test_the_set_is_large_bilingual_and_covers_faults_and_missing_data():
    scenarios = list(SCENARIOS.values())
    assert len(scenarios) >= 40
    langs = Counter(s.lang for s in scenarios)
    assert abs(langs["zh"] - langs["en"]) <= len(scenarios) * 0.1
    faults = {f.split(":")[0] for s in scenarios for f in s.simulation.faults}
    assert faults == {"heater_failure", "vent_stuck", "bearing_wear"}
    assert any(not s.simulation.faults and not s.simulation.drop for s in scenarios)
    assert any(d.last_hours is None for s in scenarios for d in s.simulation.drop)  # a zone that sent nothing
    assert any(d.last_hours for s in scenarios for d in s.simulation.drop)  # a zone that went quiet
    for s in scenarios:  # every id the set names exists on the site (or is named as missing)
        for e in s.expect_tools:
            assert all(t is None or SITE.sensors_of(t) for t in e.target), s.id
        assert s.truth.target is None or SITE.sensors_of(s.truth.target) or s.names, s.id


def test_a_malformed_scenario_is_refused(tmp_path):
    good = json.loads(SCENARIO_FILE.read_text(encoding="utf-8").splitlines()[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**good, "truth_status": "normal"}) + "\n", encoding="utf-8")  # truth is never written
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_scenarios(bad)


# ---------------------------------------------------------------- the judge

@pytest.mark.parametrize("text, target, expected", [
    # tool summaries quoted by the extractive answer
    ("GH-2-TEMP: the reading is within limits (taken just now) — GH-2-TEMP 21.2 °C (normal 20.0–24.0, day) [6]",
     "GH-2-TEMP", ["normal"]),
    ("GH-2: all 4 readings within limits (oldest taken 2 min ago)", "GH-2-TEMP", ["normal"]),
    ("GH-2: all 9 readings within limits (all taken just now)", "GH-2-TEMP", ["normal"]),
    ("GH-2-TEMP: 1 sensor, 1 to look at — GH-2-TEMP 31.2 °C alarm (above 30, day) [6]", "GH-2-TEMP", ["high"]),
    ("GH-1-TEMP: 1 sensor, 1 to look at — GH-1-TEMP 6.70 °C emergency (below 10.0, night)", "GH-1-TEMP", ["low"]),
    ("GH-2-TEMP: 1 sensor, 1 to look at — GH-2-TEMP no data [6]", "GH-2-TEMP", ["no_data"]),
    ("GH-1-RH: 1 sensor, 1 to look at — GH-1-RH stale (last reading 2 h ago)", "GH-1-RH", ["no_data"]),
    ("GH-2-TEMP: no readings between 04-10 04:00 and 04-10 10:00", "GH-2-TEMP", ["no_data"]),
    ("P-101: 7 sensors, 1 to look at — P-101 stopped (its readings are not judged)", "P-101", ["stopped"]),
    ("VT-101 over 6 h: 0.05–6.11 mm/s, mean 4.23, last 6.11; trend +0.735 mm/s/h; 2 excursion(s), "
     "worst alarm high 6.11",
     "VT-101", ["high"]),
    ("VT-101 over 6 h: 0.05–1.73 mm/s, mean 0.70, last 1.61; trend +0.382 mm/s/h", "VT-101", []),
    # a zone summary: the clause about another sensor of the zone is not about the one asked
    ("GH-2: 9 sensors, 2 to look at — GH-2-TEMP 24.1 °C warning (above 24.0, day); GH-2-CO2 431 ppm warning "
     "(below 800, day)", "GH-2-TEMP", ["high"]),
    # answers a model writes, in both languages
    ("温室2号现在温度为31.2 °C，偏高，超过白天上限 [1]。", "GH-2-TEMP", ["high"]),
    ("温室2号的温度正常，为21.2 °C [1]。", "GH-2-TEMP", ["normal"]),
    ("温室1号现在温度6.7 °C，过低，已低于紧急下限。", "GH-1-TEMP", ["low"]),
    ("温室2号湿度正常，温度偏高。", "GH-2-TEMP", ["high"]),
    ("GH-1 is normal, but GH-2 is too warm at 27 °C.", "GH-2-TEMP", ["high"]),
    ("Glasshouse 2 is at 21.2 °C. That is within the normal range for flowering tomatoes [1].", "GH-2-TEMP",
     ["normal"]),
    ("GH-2 is at 16.9 °C [1]. The temperature is within the night range.", "GH-2-TEMP", ["normal"]),
    ("P-101 is running normally; all readings are within limits [1].", "P-101", ["normal"]),
    ("P-101 is stopped. All its readings are old.", "P-101", ["stopped"]),
    # written by Qwen2.5-Coder-1.5B through the agent
    ("Yes, the irrigation pump is OK right now. [1]", "P-101", ["normal"]),
    ("The vibration over the last 6 hours is 4.23 mm/s, with a trend of +0.735 mm/s/h. There were 2 excursion(s), "
     "with the worst alarm high at 6.11 mm/s. The source for this information is [6].", "VT-101", ["high"]),
    ("泵P-101目前已停机。", "P-101", ["stopped"]),
    # negations and doubt
    ("GH-2 temperature is not normal: 31.2 °C [1].", "GH-2-TEMP", ["abnormal"]),
    ("The temperature in GH-2 isn't within limits.", "GH-2-TEMP", ["abnormal"]),
    ("GH-1 is not too cold: 16.7 °C.", "GH-1-TEMP", ["normal"]),
    ("温室2号温度不正常。", "GH-2-TEMP", ["abnormal"]),
    ("温室2号温度异常 [1]。", "GH-2-TEMP", ["abnormal"]),
    ("温室2号温度未超出正常范围。", "GH-2-TEMP", ["normal"]),
    ("二号温室目前无异常，温度17.1 °C。", "GH-2-TEMP", ["normal"]),
    ("No alarms and nothing abnormal on P-101 in the last 24 h.", "P-101", ["normal"]),
    ("泵P-101有异常振动。", "P-101", ["abnormal"]),
    ("传感器显示没有数据，因此无法确定温室2号的温度是否正常。", "GH-2-TEMP", ["no_data"]),
    ("温室2号的温度传感器没有数据，无法判断温度是否正常。", "GH-2-TEMP", ["no_data"]),
    ("I cannot tell whether GH-2 is normal: there are no readings from GH-2-TEMP.", "GH-2-TEMP", ["no_data"]),
    ("是的，温室2号现在温度正常。传感器显示没有数据，因此无法确定温室2号的温度是否正常。", "GH-2-TEMP",
     ["normal", "no_data"]),
    # limits, conditions and quoted tables are not findings
    ("If the temperature in GH-2 falls below 13 °C, start the heating.", "GH-2-TEMP", []),
    ("温室2号夜间温度应控制在16–18 °C。", "GH-2-TEMP", []),
    ("GH-2 normal range is 16–18 °C at night.", "GH-2-TEMP", []),
    ("| 开花坐果期 | 20–24 | 16–18 | 65–80 | 800–1000 |", "GH-2-TEMP", []),
    ("Parameter: Flow; Tag: FT-101; Normal range: 40–55 m³/h; Alarm: below 20 m³/h or above 62 m³/h [2]", "P-101", []),
    ("参数: 振动速度有效值; 位号: VT-101; 正常范围: 不超过2.8 mm/s; 报警: 4.5 mm/s; 联锁停机: 7.1 mm/s持续10 s [2]",
     "VT-101", []),
    ("操作人员每班检查并在P-101运行记录表上记录VT-101振动以及有无异常声音或气味。 [1]", "VT-101", []),
    # a quoted passage after a finding is not part of it
    ("VT-101: 1 sensor(s), 1 to look at — VT-101 6.20 mm/s alarm (above 4.50, day) [6] 将各项数值与第3.1节正常范围"
     "比较，超出正常范围的，当班报告维修主管。 [1] Up to 5 drops per minute is normal. [2]", "VT-101", ["high"]),
    ("我不知道：现场的文档和工具中没有能回答这个问题的依据。\n已在文档中检索“泵P-101现在运行正常吗？”。最接近的段落："
     "«P-101 离心泵操作维护手册 > 5 停机 > 5.1 正常停机»。", "P-101", []),
    # the whole site
    ("No excursions beyond alarm limits in the 24 h to 04-10 10:00 (26 sensors) [6]", None, ["normal"]),
    ("过去24小时没有报警 [1]。", None, ["normal"]),
    ("1 excursion(s) in the 24 h to 04-10 04:00 (1 emergency): emergency GH-1-TEMP low 6.40 °C (< 10.0) 04-09 21:04 "
     "ongoing [6]", None, ["low"]),
    ("No excursions beyond alarm limits in GH-2 in the 24 h to 04-10 10:00 (9 sensors). No data from 9 sensor(s): "
     "GH-2-TEMP, GH-2-RH …", "GH-2", ["normal", "no_data"]),
    # a zone the site does not have: readings of the others are not about it
    ("GH-1-RH: the reading is within limits (taken just now) — GH-1-RH 66.1 %\n"
     "GH-2-RH: the reading is within limits (taken 1 min ago)", "GH-3", []),
])
def test_the_judge_reads_the_claimed_status(text, target, expected):
    if target == "GH-3":
        _, others, _, _ = target_names(SITE, None)
        assert judge(text, ["GH-3", "温室3号", "greenhouse 3"], others).statuses == expected
        return
    assert claims(text, target) == expected


def test_the_judge_reads_values_but_not_limits_ids_or_times():
    names, others, metric, strong = target_names(SITE, "GH-2-TEMP")
    claim = judge("GH-2-TEMP: the reading is within limits (taken 2 min ago) — GH-2-TEMP 21.2 °C (normal 20.0–24.0, day) [6]",
                  names, others, metric, strong)
    assert "21.2" in claim.numbers and "20.0" not in claim.numbers and "24.0" not in claim.numbers
    assert not {"2", "101"} & set(judge("泵P-101在04-10 10:00读数3.34 bar", *target_names(SITE, "PT-102")).numbers)
    assert value_stated(["16.9"], 16.94) and value_stated(["17"], 16.94) and value_stated(["6.70"], 6.7)
    assert not value_stated(["16.8"], 16.94) and not value_stated([], 16.94) and value_stated([], None)


# ---------------------------------------------------------------- scoring

def _scenario(asks: str = "status", value: str | None = "latest") -> Scenario:
    return SCENARIOS["silent2-temp-en"].model_copy(update={"asks": asks, "value": value})


def test_a_status_the_data_does_not_support_is_counted():

    no_data = Truth("no_data", {"no_data"})
    assert score(_scenario(), no_data, Claim(["normal"]))["unsupported"] == ["normal"]
    mixed = score(_scenario(), no_data, Claim(["normal", "no_data"]))
    assert not mixed["agree"] and mixed["unsupported"] == ["normal"]
    assert score(_scenario(), no_data, Claim(["no_data"])) == {"agree": True, "status_ok": True, "value_ok": True,
                                                              "unsupported": []}
    high = Truth("high", {"high"}, 30.2)
    said_nothing = score(_scenario(), high, Claim([], ["30.2"]))
    assert not said_nothing["agree"] and not said_nothing["unsupported"]  # a status question needs a status
    assert score(_scenario("value"), high, Claim([], ["30.2"]))["agree"]  # a value question needs the value
    assert not score(_scenario("value"), high, Claim([], ["29.1"]))["agree"]
    assert not score(_scenario(), high, Claim(["high"], ["29.1"]))["agree"]
    assert score(_scenario(), high, Claim(["abnormal"]))["unsupported"] == []  # right, but says no direction
    assert not score(_scenario(), high, Claim(["abnormal"]))["agree"]


# ---------------------------------------------------------------- the truth, from a simulated store

@pytest.fixture
def truth_for(tmp_path):
    stores = []

    def truth(scenario_id: str):
        scenario = SCENARIOS[scenario_id]
        store = SensorStore(tmp_path / f"{scenario_id}.sqlite")
        stores.append(store)
        assert simulate_into(store, SITE, scenario.simulation) > 0
        now = clock_of(SITE, scenario.simulation)
        tools = (SensorLatest, SensorHistory, SiteCheck)
        registry = ToolRegistry([cls(SITE, store, clock=lambda: now) for cls in tools])
        return truth_of(registry, scenario)

    yield truth
    for s in stores:
        s.close()


def test_the_truth_comes_from_the_simulated_store(truth_for):
    cold = truth_for("heat1-gh1-temp-zh")  # heater failure in GH-1: the night air falls below the alarm
    assert cold.status == "low" and cold.value < 13 and cold.unit == "°C"
    fine = truth_for("heat1-gh2-temp-en")  # the same night in GH-2, whose heating works
    assert fine.status == "normal" and 16 <= fine.value <= 18
    assert truth_for("vent2-gh2-temp-en").status == "high"  # vents stuck shut on a sunny day
    wear = truth_for("wear-vib6h-en")  # bearing wear: vibration through the alarm
    assert wear.status == "high" and wear.value > 4.5
    assert truth_for("night-pump-en").status == "stopped"  # between irrigation periods
    assert truth_for("silent2-temp-zh").status == "no_data"  # GH-2 sent nothing
    assert truth_for("stale1-temp-en").status == "no_data"  # GH-1 went quiet two hours ago
    assert truth_for("day-gh3-rh-zh").status == "no_data"  # the site has no 温室3号
    assert truth_for("silent2-alarms-en").accept == {"no_data"}  # "no alarms" from no data is not a finding


# ---------------------------------------------------------------- through the agent

def knowledge(home: Path, embedding: dict) -> tuple[Settings, Path, object]:
    """Settings, the sample knowledge indexed once, and the embedder it was indexed with."""
    from knowledge.builder import build_index
    from knowledge.embedding import make_embedder

    settings = Settings(home=home, embedding=embedding)
    embedder = make_embedder(settings.embedding, home)
    build_index([settings.samples_dir], settings, embedder=embedder)
    return settings, home / "index", embedder


RUN = ["heat1-gh1-temp-zh", "day-gh2-temp-en", "silent2-temp-en", "day-p101-en"]


def test_a_small_run_through_the_agent_in_extractive_mode(tmp_path):
    """The real agent and tools; the hashing embedder keeps indexing cheap (the answers' tool
    lines, which the scenarios score, do not depend on it)."""
    from evals.scenarios import evaluate_scenarios

    settings, index, embedder = knowledge(tmp_path / "index-home", {"model": "fake"})
    result = evaluate_scenarios(settings, ids=RUN, embedder=embedder, index_dir=index, details=True)
    assert {"agreement", "unsupported_claims", "questions", "tool_agreement", "by_lang", "mode", "model",
            "failures"} <= set(result)
    assert result["questions"] == 4 and result["mode"] == "extractive" and result["model"] == "extractive"
    assert set(result["by_lang"]) == {"zh", "en"} and result["by_lang"]["zh"]["questions"] == 1
    records = {r["id"]: r for r in result["results"]}
    assert [records[i]["truth"]["status"] for i in RUN] == ["low", "normal", "no_data", "normal"]
    for r in records.values():  # every turn answered and called a sensor tool
        assert r["answer"] and r["error"] is None and r["calls"]
    # the failures list is exactly the scenarios that did not agree, claimed too much or missed a tool
    bad = {r["id"] for r in records.values() if not r["agree"] or r["unsupported"] or not r["tools_ok"]}
    assert {f["id"] for f in result["failures"]} == bad
    assert result["unsupported_claims"] == sum(bool(r["unsupported"]) for r in records.values())
    # a deliberately wrong answer to the no-data scenario: "normal" is unsupported, however it is cited
    silent = SCENARIOS["silent2-temp-en"]
    truth = records["silent2-temp-en"]["truth"]

    wrong = judge("Yes, GH-2 temperature is normal now [1].", *target_names(SITE, "GH-2-TEMP"))
    scored = score(silent, Truth(truth["status"], set(truth["accept"]), truth["value"]), wrong)
    assert wrong.statuses == ["normal"] and scored["unsupported"] == ["normal"] and not scored["agree"]


@pytest.mark.slow
def test_the_whole_set_in_extractive_mode(tmp_path):
    from evals.scenarios import evaluate_scenarios

    settings, index, embedder = knowledge(tmp_path / "index-home", Settings().embedding.model_dump())
    result = evaluate_scenarios(settings, embedder=embedder, index_dir=index)
    assert result["questions"] == len(SCENARIOS)
    assert result["by_lang"]["zh"]["questions"] + result["by_lang"]["en"]["questions"] == len(SCENARIOS)
    assert 0 <= result["agreement"] <= 1 and result["unsupported_claims"] == sum(bool(f["unsupported"])
                                                                                 for f in result["failures"])


@pytest.mark.slow
def test_onsite_eval_scenarios_prints_json(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("ONSITE_HOME", str(tmp_path))
    out = CliRunner().invoke(app, ["eval", "scenarios", "--limit", "2", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output.strip().splitlines()[-1])
    assert result["questions"] == 2 and result["mode"] == "extractive"
    assert {"agreement", "unsupported_claims", "by_lang", "failures"} <= set(result)
