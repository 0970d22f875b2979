"""WeChat's value rules applied before sending: fixed when the meaning survives, refused with the
key and the reason when it would not."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from tools.push.wechat_values import TemplateValueError, fit

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("key, value, expected", [
    ("thing1", "short", "short"),
    ("thing1", "x" * 25, "x" * 19 + "…"),
    ("thing1", "two\nlines  here", "two lines here"),
    ("number2", 4.7, "4.7"),
    ("number2", 12, "12"),
    ("number2", 1 / 3, "0.333333"),
    ("number2", "0042", "42"),
    ("number2", 1e-7, "0"),
    ("amount3", 12.5, "12.50"),
    ("time4", 1_796_711_400_000, "2026-12-08 14:30"),
    ("time4", "2026-12-08T06:30:00Z", "2026-12-08 14:30"),
    ("time4", "2026-12-08 14:30", "2026-12-08 14:30"),
    ("date5", 1_796_711_400_000, "2026-12-08"),
    ("phrase6", "alarm", "报警"),
    ("phrase6", "critical", "紧急"),
    ("phrase6", "已处理", "已处理"),
    ("character_string7", "WO-2026-0042", "WO-2026-0042"),
    ("character_string7", "A" * 40, "A" * 32),
    ("letter8", "abc", "abc"),
    ("name9", "张三", "张三"),
])
def test_values_fitted(key, value, expected):
    assert fit(key, value, TZ) == expected


@pytest.mark.parametrize("key, value, why", [
    ("number1", "high", "a number"),
    ("number1", -3.5, "no sign"),
    ("number1", float("nan"), "finite"),
    ("number1", True, "true/false"),
    ("number1", 10**40, "more than 32 digits"),
    ("phrase2", "alarm raised", "5 Chinese characters"),
    ("phrase2", "非常严重的报警", "5 Chinese characters"),
    ("time3", "yesterday", "not a time"),
    ("thing4", "   ", "empty"),
    ("letter5", "ab1", "letters only"),
    ("character_string6", "泵", "letters, digits and symbols"),
    ("symbol7", "!!!!!!", "5 symbols"),
])
def test_values_wechat_would_refuse_are_refused_with_the_key(key, value, why):
    with pytest.raises(TemplateValueError, match=why) as err:
        fit(key, value, TZ, source="value")
    assert err.value.key == key and key in str(err.value)


def test_a_large_number_keeps_at_most_32_digits_and_no_exponent():
    text = fit("number1", 1.2345678901234567e25 + 0.5, TZ)
    assert text.isdigit() and len(text) == 26
    text = fit("number1", 123456789012345678901234.125, TZ)
    assert "e" not in text and sum(c.isdigit() for c in text) <= 32
