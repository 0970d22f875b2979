"""Both languages complete; the language follows the setting, else the browser."""

from __future__ import annotations

import re

import pytest

from ui.i18n import TEXT, Labels, pick_lang, t


def test_every_text_has_both_languages_with_the_same_fields():
    for key, (en, zh) in TEXT.items():
        assert en.strip() and zh.strip(), key
        assert set(re.findall(r"{(\w+)", en)) == set(re.findall(r"{(\w+)", zh)), key


def test_chinese_labels_are_chinese():
    tabs = [k for k in TEXT if k.startswith("tab.")]
    assert all(re.search(r"[\u4e00-\u9fff]", t("zh", k)) for k in tabs)
    assert t("zh", "chat.send") == "发送" and t("en", "chat.send") == "Send"
    assert t("fr", "chat.send") == "Send"  # unknown language: English
    assert t("en", "no.such.key") == "no.such.key"
    assert t("en", "sources.page", page=3) == "p. 3"


@pytest.mark.parametrize("setting, header, expected", [
    ("zh", "en-US,en;q=0.9", "zh"),
    ("en", "zh-CN,zh;q=0.9", "en"),
    ("auto", "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("auto", "zh-TW", "zh"),
    ("auto", "de-DE,de;q=0.9,en;q=0.5", "en"),
    ("auto", "fr-FR", "en"),
    (None, None, "en"),
    ("auto", "", "en"),
])
def test_pick_lang(setting, header, expected):
    assert pick_lang(setting, header) == expected


def test_labels_give_one_update_per_bound_component():
    labels = Labels()
    a, b = object(), object()
    labels.bind(a, label="chat.zone")
    labels.bind(b, value="chat.send", choices=lambda lang: [t(lang, "scope.any")])
    assert labels.components == [a, b]
    assert labels.values("zh") == [{"label": "区域"}, {"value": "发送", "choices": ["全厂"]}]
    updates = labels.updates("en")
    assert [u["label"] if "label" in u else u["value"] for u in updates] == ["Zone", "Send"]


# --- no emoji in the page's own words: a Debian box without an emoji font shows empty boxes ---------

# Code points drawn as emoji by default (Unicode Emoji_Presentation), the pictograph planes and the
# emoji variation selector. Text symbols such as ⚠ (U+26A0) or ● stay: ordinary fonts carry them.
_EMOJI_BMP = {0x231A, 0x231B, *range(0x23E9, 0x23ED), 0x23F0, 0x23F3, *range(0x23F8, 0x23FB), 0x25FD, 0x25FE,
              0x2614, 0x2615, *range(0x2648, 0x2654), 0x267F, 0x2693, 0x26A1, 0x26AA, 0x26AB, 0x26BD, 0x26BE,
              0x26C4, 0x26C5, 0x26CE, 0x26D4, 0x26EA, 0x26F2, 0x26F3, 0x26F5, 0x26FA, 0x26FD, 0x2705, 0x270A,
              0x270B, 0x2728, 0x274C, 0x274E, *range(0x2753, 0x2756), 0x2757, *range(0x2795, 0x2798), 0x27B0,
              0x27BF, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55, 0xFE0F, 0x20E3}


def emoji_in(text: str) -> list[str]:
    return [c for c in text if ord(c) in _EMOJI_BMP or 0x1F000 <= ord(c) <= 0x1FAFF]


def test_the_emoji_detector_knows_emoji_from_text_symbols():
    assert emoji_in("💬 Ask ✅ ❌ ⏸ ✏️ 📄") == ["💬", "✅", "❌", "⏸", "\ufe0f", "📄"]
    assert emoji_in("⚠ ● · — 中文 → ×") == []


def test_no_emoji_in_the_page_words_or_modules():
    from pathlib import Path

    import ui
    from ui.i18n import TEXT

    words = {key: emoji_in(en + zh) for key, (en, zh) in TEXT.items()}
    assert {k: v for k, v in words.items() if v} == {}
    found = {}
    for path in sorted(Path(ui.__file__).parent.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if emoji_in(line):
                found[f"{path.name}:{n}"] = line.strip()
    assert found == {}


def test_the_icons_ship_with_the_page():
    from ui.style import CSS, ICON_OF, ICONS

    for name in set(ICON_OF.values()):
        assert (ICONS / f"{name}.svg").read_text().startswith("<svg")
    assert CSS.count(" mask-image: url(\"data:image/svg+xml,") == len(ICON_OF)  # and -webkit-mask-image
    assert "http" not in CSS.replace("http://www.w3.org/2000/svg", "")  # nothing loaded from elsewhere


@pytest.mark.parametrize("text, expected", [
    ("番茄的适宜温度是多少？", "zh"),
    ("P-101 的最大排出压力是多少？", "zh"),  # an asset tag does not make it English
    ("What is the maximum discharge pressure of pump P-101?", "en"),
    ("What does 番茄 mean?", "en"),
    ("", None), ("12345", None), (None, None),
])
def test_question_lang(text, expected):
    from ui.i18n import question_lang

    assert question_lang(text) == expected
