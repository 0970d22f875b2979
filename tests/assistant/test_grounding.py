"""The deterministic answer checks: citations, numbers with units, safety statements."""

from assistant.grounding import check_citations, check_numbers, check_safety, cited, statements, verify
from assistant.types import Source

MANUAL = Source(1, "document", "P-101 > 3.1 Limits",
                "Bearing temperature must stay below 80 °C. Lubricate every 500 running hours. Alarm at 4.5 mm/s.")
READING = Source(2, "tool", "sensor_latest(target=TT-101)", "TT-101 71.43 °C normal", data={"value": 71.43})
CROP = Source(3, "document", "番茄 > 2.2", "开花坐果期白天气温20–24 °C，夜间16–18 °C。")


def test_markers_after_the_full_stop_belong_to_the_sentence_before():
    assert [refs for _, refs in statements("Keep it below 80 °C. [1] Lubricate it.")] == [[1], []]
    assert [refs for _, refs in statements("温度不超过80 °C。[1]每500小时润滑。")] == [[1], []]
    assert cited("a [2] b [1][2]") == [2, 1]


def test_citation_to_a_source_that_was_not_given_fails():
    assert check_citations("Below 80 °C [1].", 2).ok
    bad = check_citations("Below 80 °C [3].", 2)
    assert not bad.ok and "[3]" in bad.detail
    assert not check_citations("No citation at all.", 2).ok


def test_numbers_must_appear_in_the_source_the_statement_cites():
    assert check_numbers("Keep the bearing below 80 °C [1].", [MANUAL, READING]).ok
    fabricated = check_numbers("Keep the bearing below 95 °C [1].", [MANUAL, READING])
    assert not fabricated.ok and "95 °C" in fabricated.detail
    # right number, wrong source
    assert not check_numbers("Keep the bearing below 80 °C [2].", [MANUAL, READING]).ok
    # a number with a unit but no citation
    assert not check_numbers("Keep the bearing below 80 °C.", [MANUAL]).ok


def test_tool_readings_may_be_rounded_to_the_precision_written():
    assert check_numbers("TT-101 reads 71.4 °C [2].", [MANUAL, READING]).ok
    assert not check_numbers("TT-101 reads 72.4 °C [2].", [MANUAL, READING]).ok


def test_ranges_and_chinese_units_are_checked_number_by_number():
    assert check_numbers("开花坐果期白天应保持20–24 °C[3]。", [CROP]).ok
    assert not check_numbers("开花坐果期白天应保持20–26 °C[3]。", [CROP]).ok
    assert not check_numbers("每500小时润滑一次[3]。", [CROP]).ok


def test_ids_are_not_quantities():
    assert check_numbers("Check P-101 and GH-2 [1].", [MANUAL]).ok


def test_safety_statements_need_a_citation():
    assert not check_safety("Lock out the pump before opening the casing.").ok
    assert not check_safety("稀释1000倍后喷施。").ok
    assert check_safety("Lock out the pump before opening the casing [1].").ok
    assert check_safety("Check the coupling.").ok


def test_verify_runs_every_check():
    checks = {c.name: c.ok for c in verify("Below 80 °C [1]. TT-101 is at 71.4 °C [2].", [MANUAL, READING])}
    assert checks == {"content": True, "citations": True, "numbers": True, "safety": True, "status": True,
                      "support": True}


# ---- status claims about live data ---------------------------------------------------------------

def _latest(n: int, *readings: dict) -> Source:
    return Source(n, "tool", "sensor_latest(target=GH-2)", "GH-2 readings", data={"readings": list(readings)})


NO_DATA = {"sensor_id": "GH-2-TEMP", "status": "no_data"}
NORMAL = {"sensor_id": "GH-2-TEMP", "status": "normal", "value": 21.5, "stale": False}
HIGH = {"sensor_id": "GH-2-TEMP", "status": "alarm", "value": 31.2, "direction": "high", "stale": False}


def test_a_normal_claim_without_readings_fails_even_uncited():
    from assistant.grounding import check_status

    bad = check_status("是的，温室2号现在温度正常。传感器显示没有数据 [1]。", [_latest(1, NO_DATA)])
    assert not bad.ok and "normal" in bad.detail and "no data" in bad.detail
    assert check_status("温室2号的温度传感器没有数据，无法确定是否正常 [1]。", [_latest(1, NO_DATA)]).ok


def test_status_claims_must_match_the_readings_they_cite():
    from assistant.grounding import check_status

    assert check_status("GH-2 is at 31.2 °C, above its alarm limit [1].", [_latest(1, HIGH)]).ok
    assert not check_status("GH-2 is normal [1].", [_latest(1, HIGH)]).ok
    assert not check_status("GH-2 is too warm [1].", [_latest(1, NORMAL)]).ok
    assert check_status("GH-2 is within limits [1]. It is not too warm.", [_latest(1, NORMAL)]).ok
    # a sentence citing only a document is not a claim about live data
    assert check_status("Above 30 °C fruit set suffers [2].", [_latest(1, NORMAL), CROP.__class__(2, "document", "c", "x")]).ok


STOPPED = {"sensor_id": "FT-101", "status": "stopped", "value": 0.0, "stale": False}
RUNNING = {"sensor_id": "FT-101", "status": "normal", "value": 46.2, "stale": False}


def _pump(n: int, *readings: dict) -> Source:
    return Source(n, "tool", "sensor_latest(target=P-101)", "P-101 readings", data={"readings": list(readings)})


def test_a_stopped_pump_is_not_ok_or_running_normally():
    from assistant.grounding import check_status

    for claim in ("Yes, the irrigation pump is OK right now. [1]", "P-101 is running normally [1].",
                  "灌溉泵现在运行正常 [1]。", "P-101 is fine [1]."):
        bad = check_status(claim, [_pump(1, STOPPED)])
        assert not bad.ok and "stopped" in bad.detail, claim
    for claim in ("P-101 is stopped [1].", "P-101 is not running, so its readings are not judged [1].",
                  "灌溉泵目前处于停机状态 [1]。", "P-101 is not running normally: it is stopped [1]."):
        assert check_status(claim, [_pump(1, STOPPED)]).ok, claim
    # and the other way round: a running pump is not "stopped"
    assert check_status("P-101 is running normally [1].", [_pump(1, RUNNING)]).ok
    assert not check_status("P-101 is stopped [1].", [_pump(1, RUNNING)]).ok


def test_an_answer_of_markers_only_fails():
    from assistant.grounding import check_content

    assert not check_content("[1]").ok and not check_content(" [1][2]. ").ok
    assert not check_content("1 [5]. Harvested tomatoes keep at 85–90 % RH [1].").ok
    assert check_content("Lubricate every 500 h [1].").ok


# ---- re-attribution -------------------------------------------------------------------------------

def test_a_fact_with_the_wrong_source_number_is_re_cited_to_the_source_that_has_it():
    from assistant.reattribution import reattribute

    text, notes = reattribute("Lubricate every 500 running hours [3]. Keep the bearing below 80 °C. [1]", [MANUAL, READING, CROP])
    assert text == "Lubricate every 500 running hours [1]. Keep the bearing below 80 °C [1]."
    assert len(notes) == 1 and "instead of [3]" in notes[0]
    assert all(c.ok for c in verify(text, [MANUAL, READING, CROP]))


def test_a_number_no_source_has_is_not_re_cited():
    from assistant.reattribution import reattribute

    text, notes = reattribute("Lubricate every 900 h [3].", [MANUAL, READING, CROP])
    assert text == "Lubricate every 900 h [3]." and notes == []
    assert not check_numbers(text, [MANUAL, READING, CROP]).ok


def test_an_uncited_or_dangling_statement_gets_the_source_holding_its_words():
    from assistant.reattribution import reattribute

    text, _ = reattribute("开花坐果期白天气温20–24 °C。\nLubricate every 500 running hours [7].", [MANUAL, READING, CROP])
    assert text == "开花坐果期白天气温20–24 °C [3]。\nLubricate every 500 running hours [1]."
    unrelated, notes = reattribute("Call the supervisor.", [MANUAL, READING, CROP])
    assert unrelated == "Call the supervisor." and notes == []


def test_numbers_written_in_chinese_words_are_checked_like_digits():
    guide = Source(1, "document", "P-101 > 7.2", "周期：每3个月或每运行2000小时，以先到者为准。夜温不低于十六度。")
    wrong = check_numbers("P-101水泵轴承每两个月加一次润滑脂。[1]", [guide])
    assert not wrong.ok and "2 个月" in wrong.detail
    assert check_numbers("每三个月加一次润滑脂 [1]。", [guide]).ok
    assert check_numbers("夜温不低于16度 [1]。", [guide]).ok  # the source's own words count too
    assert check_numbers("一天检查一次 [1]。", [guide]).ok  # "一天" is idiom, not a quantity


def test_a_live_status_citing_only_a_document_is_still_checked_against_the_readings():
    from assistant.grounding import check_status

    doc = Source(1, "document", "guide", "Day air temperature 20–24 °C.")
    assert not check_status("GH-2 temperature is normal now. [1]", [doc, _latest(2, NO_DATA)]).ok
    assert not check_status("The temperature in greenhouse 3 is normal now [1].", [doc]).ok  # nothing was read
    assert check_status("Keep the day temperature at 20–24 °C [1].", [doc]).ok  # no status claim


def test_alarm_claims_must_match_the_excursions():
    from assistant.grounding import check_status

    alarms = Source(1, "tool", "site_check(hours=24)", "1 excursion", data={"excursions": [
        {"sensor_id": "VT-101", "direction": "high"}], "no_data": []})
    quiet = Source(1, "tool", "site_check(hours=24)", "No excursions", data={"excursions": [], "no_data": []})
    assert not check_status("没有报警。[1]", [alarms]).ok
    assert check_status("有报警：VT-101 偏高 [1]。", [alarms]).ok
    assert not check_status("Yes, there are alarms in the last 24 hours. [1]", [quiet]).ok


def test_with_live_data_read_a_bare_state_citing_a_document_is_checked_against_it():
    from assistant.grounding import check_status

    doc = Source(1, "document", "rules", "Alarms are shown on the panel. Above 30 °C fruit set suffers.")
    alarms = Source(2, "tool", "site_check(hours=24)", "1 excursion", data={"excursions": [
        {"sensor_id": "VT-101", "direction": "high"}], "no_data": []})
    assert not check_status("过去24小时没有报警。[1]", [doc, alarms]).ok
    assert check_status("Above 30 °C fruit set suffers [1]. VT-101 is above its alarm limit [2].", [doc, alarms]).ok
    reference = "A bearing temperature up to 40 K above ambient and not above 70 °C is normal [1]."
    assert check_status(reference, [doc, _latest(2, NO_DATA)]).ok  # a stated limit, not a live claim
