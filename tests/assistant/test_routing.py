"""Routing without a model (the site's own names) and validation of any plan before it runs."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.routing import (RoutePlan, ToolCall, constrain_model_plan, deterministic_plan, plan_schema, rules_undecided,
                               validate_plan)
from tools.catalog import ToolContext, build_registry
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore
from tools.sensors.store import SensorStore
from tools.site import load_site_profile
from tools.workorders.store import WorkOrderStore

SITE = load_site_profile(Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml")
PHOTO = "0" * 32


@pytest.fixture
def registry(tmp_path):
    store, orders = SensorStore(tmp_path / "s.sqlite"), WorkOrderStore(tmp_path / "w.sqlite")
    yield build_registry(ToolContext(site=SITE, sensors=store, work_orders=orders, uploads=UploadStore(tmp_path / "up"),
                                     products=ProductStore(tmp_path / "products")))
    store.close()
    orders.close()


def calls(plan: RoutePlan) -> list[tuple[str, dict]]:
    return [(c.tool, c.args) for c in plan.calls]


def test_chinese_alias_and_metric_pick_the_sensor_and_the_crop_stage_words():
    plan = deterministic_plan("温室2号现在温度正常吗？", SITE, lang="zh")
    assert calls(plan) == [("sensor_latest", {"target": "GH-2-TEMP"})]
    assert "番茄" in plan.search and "开花坐果期" in plan.search


def test_rising_vibration_reads_history_and_proposes_a_work_order():
    plan = deterministic_plan("P-101 vibration is rising, what should I check?", SITE)
    tools = calls(plan)
    assert tools[0] == ("sensor_history", {"sensor_id": "VT-101", "hours": 24})
    assert tools[1][0] == "create_work_order" and tools[1][1]["asset"] == "P-101"


def test_ids_match_without_hyphen_and_hours_are_read():
    plan = deterministic_plan("p101 bearing temperature trend over the last 6 hours", SITE)
    assert {c.args["sensor_id"] for c in plan.calls if c.tool == "sensor_history"} == {"TT-101", "TT-102"}
    assert all(c.args["hours"] == 6 for c in plan.calls if c.tool == "sensor_history")


def test_a_document_question_calls_no_tool():
    assert deterministic_plan("How do I lock out the pump before opening it?", SITE).calls == []
    assert deterministic_plan("番茄开花期夜温多少合适？", SITE, lang="zh").calls == []


def test_alarms_question_runs_a_site_check_and_photos_are_inspected():
    assert calls(deterministic_plan("有没有报警？", SITE, lang="zh")) == [("site_check", {"hours": 24})]
    plan = deterministic_plan("Is this tray ok?", SITE, photos=[PHOTO], products=["seed-tray"])
    assert calls(plan) == [("inspect_image", {"image_id": PHOTO, "product": "seed-tray"})]


def test_scope_fills_in_the_zone_a_question_leaves_out():
    plan = deterministic_plan("what is the humidity now?", SITE, scope_zone="GH-1")
    assert calls(plan) == [("sensor_latest", {"target": "GH-1-RH"})]


def test_validation_rejects_impossible_calls_before_anything_runs(registry):
    plan = RoutePlan(calls=[
        ToolCall(tool="sensor_latest", args={"target": "gh-2"}),  # case is normalised
        ToolCall(tool="sensor_latest", args={"target": "GH-9"}),  # no such zone
        ToolCall(tool="delete_everything", args={}),
        ToolCall(tool="inspect_image", args={"image_id": PHOTO, "product": "x"}),  # photo not attached
        ToolCall(tool="create_work_order", args={"asset": "P-999", "problem": "it is broken"}),
        ToolCall(tool="sensor_latest", args={"target": "GH-2"}),  # duplicate
    ], search="q")
    checked = validate_plan(plan, registry, SITE, photos=[], max_calls=5)
    assert [(c.tool, c.args) for c in checked.calls] == [("sensor_latest", {"target": "GH-2"})]
    reasons = {r["tool"] + ":" + re.split("[:;]", r["reason"])[0] for r in checked.rejected}
    assert reasons == {"sensor_latest:the site has no zone, asset or sensor 'GH-9'", "delete_everything:unknown tool 'delete_everything'",
                       "inspect_image:that photo was not attached to this question",
                       "create_work_order:unknown asset 'P-999'", "sensor_latest:duplicate call"}


def test_validation_caps_the_number_of_calls_and_work_orders(registry):
    many = [ToolCall(tool="sensor_latest", args={"target": s.id}) for s in SITE.sensors[:7]]
    orders = [ToolCall(tool="create_work_order", args={"asset": "P-101", "problem": f"problem number {i}"}) for i in range(2)]
    checked = validate_plan(RoutePlan(calls=orders + many), registry, SITE, photos=[], max_calls=5)
    assert len(checked.calls) == 5 and [c.tool for c in checked.calls].count("create_work_order") == 1
    assert any("one action with side effects per turn" in r["reason"] for r in checked.rejected)


def test_decision_schema_only_admits_registered_tools_with_their_own_arguments(registry):
    schema = plan_schema(registry, max_calls=3)
    ok = schema.model_validate({"calls": [{"tool": "sensor_history", "args": {"sensor_id": "VT-101", "hours": 12}}],
                                "search": "vibration"})
    assert ok.calls[0].args.sensor_id == "VT-101"
    for bad in ({"tool": "sensor_history", "args": {"sensor_id": "VT-999"}},
                {"tool": "rm", "args": {}},
                {"tool": "sensor_history", "args": {"sensor_id": "VT-101", "hours": 10_000}}):
        with pytest.raises(ValidationError):
            schema.model_validate({"calls": [bad]})
    with pytest.raises(ValidationError):
        schema.model_validate({"calls": [{"tool": "list_work_orders", "args": {}}] * 4})
    text = str(schema.model_json_schema())
    assert "VT-101" in text and "create_work_order" in text


def test_a_measurement_word_alone_is_a_knowledge_question():
    assert deterministic_plan("What soil water content should trigger irrigation?", SITE).calls == []
    assert deterministic_plan("What EC is normal for tomato at flowering?", SITE).calls == []
    live = deterministic_plan("What is the humidity right now?", SITE)
    assert {c.args["target"] for c in live.calls} == {"GH-1-RH", "GH-2-RH"}


@pytest.mark.parametrize("question, undecided", [
    ("How often should the pump bearings be lubricated?", False),  # knowledge: no tool, no model
    ("番茄苗期白天温度应该控制在多少？", False),
    ("温室2号现在温度正常吗？", False),  # the rules name the sensor
    ("Is the tomato house OK right now?", True),  # live, but no place or measurement the profile knows
    ("Is it too warm in the tomato house right now?", False),  # a measurement: every air temperature
    ("现在有报警吗？", False),  # a site check the rules plan themselves
])
def test_the_model_routes_only_what_the_rules_cannot(question, undecided):
    assert rules_undecided(question, deterministic_plan(question, SITE), []) is undecided


def test_a_model_plan_keeps_its_targets_but_not_its_dates_or_unasked_work_orders():
    invented = RoutePlan(calls=[
        ToolCall(tool="sensor_history", args={"sensor_id": "VT-101", "hours": 1, "end": "2023-04-01T12:00:00Z"}),
        ToolCall(tool="create_work_order", args={"asset": "P-101", "problem": "check it", "priority": "high"}),
    ], search="words to search the documents for")
    plan = constrain_model_plan(invented, "What is the normal discharge pressure of P-101 over the last 2 days?", SITE)
    assert calls(plan) == [("sensor_history", {"sensor_id": "VT-101", "hours": 48})]
    reported = constrain_model_plan(invented, "P-101 is leaking at the seal", SITE)
    assert calls(reported)[1] == ("create_work_order", {"asset": "P-101", "problem": "P-101 is leaking at the seal",
                                                        "priority": "high"})
    assert calls(reported)[0][1]["hours"] == 24  # no window stated: the default, ending now


@pytest.mark.parametrize("question", [
    "What are the vibration alarm and trip limits of P-101?",
    "温室2号的温度范围是多少？",
    "How often should P-101 be lubricated?",
])
def test_a_question_about_limits_or_intervals_is_answered_from_the_documents(question):
    assert deterministic_plan(question, SITE).calls == []


def test_limits_with_a_live_word_still_read_the_sensor():
    plan = deterministic_plan("Is P-101 vibration within its alarm limits now?", SITE)
    assert ("sensor_latest", {"target": "VT-101"}) in calls(plan)


# ---- ids next to Chinese text, operators' words, places the site lacks, reports vs questions -----

@pytest.mark.parametrize("question, target", [
    ("泵P-101现在运行正常吗？", "P-101"),  # Chinese characters around the id: ASCII boundaries, not \b
    ("P-101现在振动正常吗", "VT-101"),
    ("温室2号现在ph多少？", "GH-2-FEED-PH"),  # an ASCII measurement word next to Chinese
    ("温室二号现在温度多少？", "GH-2-TEMP"),  # a numbered alias written with a Chinese numeral
])
def test_ids_and_words_next_to_chinese_characters_are_found(question, target):
    assert calls(deterministic_plan(question, SITE, lang="zh")) == [("sensor_latest", {"target": target})]


def test_an_alias_number_is_not_part_of_a_longer_number():
    from assistant.routing import mentions

    assert mentions("1号温室现在温度", ["1号温室"]) and not mentions("11号温室现在温度", ["1号温室"])
    assert not mentions("greenhouse 12 now", ["greenhouse 1"]) and not mentions("十一号温室", ["一号温室"])


def test_an_id_is_not_a_window_length():
    history = deterministic_plan("GH-2 humidity trend", SITE)
    assert calls(history) == [("sensor_history", {"sensor_id": "GH-2-RH", "hours": 24})]
    assert calls(deterministic_plan("温室1号过去两天温度趋势", SITE, lang="zh"))[0][1]["hours"] == 48


@pytest.mark.parametrize("question, target", [
    ("Is it too humid in greenhouse 2?", "GH-2-RH"),
    ("温室2号现在潮湿吗？", "GH-2-RH"),
    ("二号温室现在闷不闷？", "GH-2-RH"),
    ("Is GH-1 warm enough right now?", "GH-1-TEMP"),
    ("Is GH-2 too cool now?", "GH-2-TEMP"),
    ("温室1号现在暖和吗？", "GH-1-TEMP"),
    ("What is the CO2 level in GH-2 now?", "GH-2-CO2"),  # "level" is not the tank level here
    ("P-101 suction pressure now?", "PT-101"),  # not also the discharge "pressure"
    ("What's the current status of P-101?", "P-101"),  # "current" is "now" here, not the motor current
    ("P-101 motor current now?", "IT-101"),
])
def test_the_words_operators_use_for_a_measurement(question, target):
    assert calls(deterministic_plan(question, SITE)) == [("sensor_latest", {"target": target})]


def test_warm_or_hot_about_equipment_is_its_own_temperature_not_the_air():
    for question in ("How hot is the P-101 bearing right now?", "Is P-101 too warm now?"):
        assert {c.args["target"] for c in deterministic_plan(question, SITE).calls} == {"TT-101", "TT-102"}


@pytest.mark.parametrize("question, written", [
    ("温室3号湿度现在多少？", "温室3号"),
    ("3号温室现在温度正常吗？", "3号温室"),
    ("三号温室现在冷吗？", "三号温室"),
    ("Is the temperature in greenhouse 3 normal now?", "greenhouse 3"),
    ("Is glasshouse 5 too warm right now?", "glasshouse 5"),
    ("GH-3 humidity now?", "GH-3"),
    ("gh-3 temperature now", "gh-3"),
])
def test_a_zone_the_site_lacks_is_asked_for_as_written_never_another_zone(question, written, registry):
    plan = deterministic_plan(question, SITE)
    assert calls(plan) == [("sensor_latest", {"target": written})]  # not every GH-1 / GH-2 sensor of the kind
    checked = validate_plan(plan, registry, SITE, photos=[], max_calls=5)
    assert checked.calls == [] and len(checked.rejected) == 1
    reason = checked.rejected[0]["reason"]
    assert f"no zone, asset or sensor '{written}'" in reason and "GH-1 (温室1号" in reason and "GH-2" in reason


def test_an_alarm_question_about_a_zone_the_site_lacks_checks_nothing_else():
    assert calls(deterministic_plan("Any alarms in GH-3 in the last 24 h?", SITE)) == [
        ("site_check", {"target": "GH-3", "hours": 24})]
    assert calls(deterministic_plan("Is P-102 running?", SITE)) == [("sensor_latest", {"target": "P-102"})]
    # the site's own places and ids are not unknown, nor is a pH value
    from assistant.routing import unknown_places

    assert unknown_places("GH-1-TEMP and P-101 in 温室1号, 二号温室, greenhouse 2, pH 6.5 over 24 h", SITE) == []


@pytest.mark.parametrize("question", [
    "How hot is the P-101 bearing right now?",
    "How high is the P-101 vibration now?",
    "Is the P-101 vibration high?",
    "Is P-101 leaking?",
    "泵P-101跳闸了吗？",
    "P-101有没有异常？",
    "What is the normal discharge pressure of P-101?",
    "How often should P-101 be checked for leaks?",
    "What should I do if P-101 trips?",
    "灌溉泵轴承温度高吗？",
])
def test_a_question_asking_for_a_value_or_a_status_proposes_no_work_order(question):
    assert "create_work_order" not in [c.tool for c in deterministic_plan(question, SITE).calls]


@pytest.mark.parametrize("question", [
    "P-101 vibration is rising",
    "P-101 is leaking at the seal",
    "泵P-101跳闸了",
    "P-101 is running hot, what should I check?",
    "The P-101 bearing is overheating",
    "P-101 vibration is high",
    "灌溉泵有异响",
    "P-101 bearing is hot",
    "灌溉泵轴承温度很高",
])
def test_a_reported_fault_proposes_a_work_order(question):
    plan = deterministic_plan(question, SITE)
    orders = [c for c in plan.calls if c.tool == "create_work_order"]
    assert len(orders) == 1 and orders[0].args["asset"] == "P-101"
    assert any(c.tool in ("sensor_latest", "sensor_history") for c in plan.calls)  # with the readings


def test_a_model_plan_gets_no_work_order_for_a_question_about_a_value():
    invented = RoutePlan(calls=[ToolCall(tool="sensor_latest", args={"target": "TT-101"}),
                                ToolCall(tool="create_work_order", args={"asset": "P-101", "problem": "hot"})])
    assert [c.tool for c in constrain_model_plan(invented, "How hot is the P-101 bearing right now?", SITE).calls] == [
        "sensor_latest"]
