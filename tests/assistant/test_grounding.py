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
    assert checks == {"citations": True, "numbers": True, "safety": True}
