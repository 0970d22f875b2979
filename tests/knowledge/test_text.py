import re

from knowledge.text import detect_lang, han_bigrams, split_sentences, word_tokens


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def test_chinese_sentences_split_on_full_stops_and_keep_closing_quotes():
    text = "进入有限空间前必须检测氧含量。氧含量应在19.5%至23.5%之间；“未经许可，不得进入。”监护人不得离开！"
    parts = split_sentences(text)
    assert parts == [
        "进入有限空间前必须检测氧含量。",
        "氧含量应在19.5%至23.5%之间；",
        "“未经许可，不得进入。”",
        "监护人不得离开！",
    ]


def test_english_sentences_do_not_split_decimals_or_abbreviations():
    text = "Set the pressure to 3.5 bar, e.g. at start-up. Check Fig. 2 first! Is it safe? Yes."
    parts = split_sentences(text)
    assert parts == ["Set the pressure to 3.5 bar, e.g. at start-up.", "Check Fig. 2 first!", "Is it safe?", "Yes."]


def test_no_text_is_lost_in_mixed_text():
    text = "泵P-101的轴承温度报警值为85 °C。Trip at 95 °C. 停机后挂牌上锁。\n第二行没有句号"
    assert _squash("".join(split_sentences(text))) == _squash(text)


def test_language_detection():
    assert detect_lang("温室番茄夜间温度不得低于15 °C") == "zh"
    assert detect_lang("Night temperature must not fall below 15 °C") == "en"
    assert detect_lang("P-101 泵") == "zh"


def test_word_tokens_handle_both_scripts_and_keep_codes():
    toks = word_tokens("Replace the bearings of pump P-101 每3个月更换轴承")
    assert "p-101" in toks and "bear" in toks  # stemmed English, code kept whole
    assert "轴承" in toks and "the" not in toks
    assert han_bigrams("上锁挂牌") == ["上锁", "锁挂", "挂牌"]
