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
