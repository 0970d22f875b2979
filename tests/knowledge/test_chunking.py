import re

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from assistant.settings import ChunkingSettings
from knowledge.chunking import _hard_split, chunk_document, embedding_text, index_text
from knowledge.embedding import approx_token_count
from knowledge.text import split_sentences
from knowledge.types import Block, DocumentMeta, LoadedDocument

LAW = """第一章 总则
第一条 为了加强厂区安全生产工作，防止和减少生产安全事故，制定本规定。
第二条 本规定适用于本厂区内的生产经营活动。
第二章 上锁挂牌
第三条 设备检修前，作业人员应当切断能源并上锁挂牌。
有下列情形之一的，不得解除上锁：
（一）检修未完成的；
（二）人员仍在设备内的。
第四条 锁具和标签应当专人专用。"""


def _doc(blocks, title="厂区安全管理规定", lang="zh", kind="regulation"):
    return LoadedDocument("rules.md", DocumentMeta(kind=kind, title=title, lang=lang), blocks)


def _squash(s):
    return re.sub(r"[\s|]+", "", s)


def test_each_article_is_its_own_chunk_with_chapter_and_article_in_the_title_path():
    chunks = chunk_document(_doc([Block("paragraph", LAW)]), "d1", approx_token_count)
    paths = [c.title_path for c in chunks]
    assert paths == [
        ["厂区安全管理规定", "第一章 总则", "第一条"],
        ["厂区安全管理规定", "第一章 总则", "第二条"],
        ["厂区安全管理规定", "第二章 上锁挂牌", "第三条"],
        ["厂区安全管理规定", "第二章 上锁挂牌", "第四条"],
    ]
    assert "（二）人员仍在设备内的。" in chunks[2].text  # items stay with their article
    assert chunks[0].metadata["kind"] == "regulation"


def test_markdown_headings_and_numbered_sections_build_the_path():
    blocks = [
        Block("heading", "Pump P-101 manual", level=1),
        Block("heading", "Maintenance", level=2),
        Block("paragraph", "3.2 Bearings\nGrease the bearings every 2000 hours with 15 g of grease."),
        Block("paragraph", "3.2.1 Replacement\nReplace both bearings every 16000 hours."),
    ]
    chunks = chunk_document(_doc(blocks, title="Pump P-101 manual", lang="en", kind="manual"), "d2", approx_token_count)
    assert [c.title for c in chunks] == [
        "Pump P-101 manual > Maintenance > 3.2 Bearings",
        "Pump P-101 manual > Maintenance > 3.2 Bearings > 3.2.1 Replacement",
    ]


def test_long_sections_respect_the_token_budget_and_lose_no_text():
    sentences = [f"Sentence number {i} says the valve V-{i} must be checked weekly." for i in range(80)]
    text = " ".join(sentences)
    settings = ChunkingSettings(max_tokens=60, min_tokens=5)
    chunks = chunk_document(_doc([Block("paragraph", text)], title="T", lang="en"), "d3", approx_token_count, settings)
    assert len(chunks) > 5
    assert all(approx_token_count(c.text) <= 60 for c in chunks)
    assert _squash("".join(c.text for c in chunks)) == _squash(text)
    # every sentence survives whole in exactly one chunk
    for s in split_sentences(text):
        assert sum(s in c.text for c in chunks) == 1


def test_an_unbreakable_sentence_is_cut_to_fit():
    text = "，".join(["温度过高时应立即停机检查冷却水"] * 40) + "。"
    chunks = chunk_document(_doc([Block("paragraph", text)]), "d4", approx_token_count, ChunkingSettings(max_tokens=50))
    assert all(approx_token_count(c.text) <= 50 for c in chunks)
    assert _squash("".join(c.text for c in chunks)) == _squash(text)


def test_table_rows_are_kept_with_their_header():
    rows = [["Stage", "Day °C", "Night °C"]] + [[f"stage {i}", f"{20 + i}", f"{14 + i}"] for i in range(30)]
    chunks = chunk_document(_doc([Block("table", rows=rows)], title="Climate", lang="en"), "d5", approx_token_count,
                            ChunkingSettings(max_tokens=60, min_tokens=0))
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith("| Stage | Day °C | Night °C |")
    body = [line for c in chunks for line in c.text.split("\n")[1:]]
    assert body == ["| " + " | ".join(r) + " |" for r in rows[1:]]  # every row once, in order


def test_the_embedder_reads_table_rows_as_column_value_pairs_and_prose_unchanged():
    rows = [["生育阶段", "白天气温（°C）", "夜间气温（°C）"], ["育苗期", "22–25", "17–19"], ["结果期", "", "16–18"]]
    blocks = [Block("paragraph", text="气温指生长点高度处的空气温度。"), Block("table", rows=rows)]
    chunks = chunk_document(_doc(blocks, title="番茄规程"), "d6", approx_token_count, ChunkingSettings(min_tokens=0))
    seen = "\n".join(embedding_text(c) for c in chunks)
    assert "生育阶段: 育苗期; 白天气温（°C）: 22–25; 夜间气温（°C）: 17–19" in seen
    assert "生育阶段: 结果期; 夜间气温（°C）: 16–18" in seen  # an empty cell is left out, not "col: "
    assert "气温指生长点高度处的空气温度。" in seen and "|" not in seen
    prose = chunk_document(_doc([Block("paragraph", text=LAW)]), "d7", approx_token_count, ChunkingSettings())
    assert all(embedding_text(c) == index_text(c) for c in prose)  # text without tables is left alone


def test_ids_are_stable_and_distinct():
    doc = _doc([Block("paragraph", LAW)])
    a = chunk_document(doc, "d1", approx_token_count)
    b = chunk_document(doc, "d1", approx_token_count)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    other = chunk_document(doc, "d9", approx_token_count)
    assert not {c.id for c in a} & {c.id for c in other}


def test_pages_follow_the_blocks():
    blocks = [Block("paragraph", "First page text about pumps.", page=1),
              Block("heading", "Faults", level=2, page=2),
              Block("paragraph", "Second page text about cavitation.", page=2)]
    chunks = chunk_document(_doc(blocks, title="M", lang="en"), "d6", approx_token_count)
    assert [(c.title_path[-1], c.page) for c in chunks] == [("M", 1), ("Faults", 2)]


@pytest.mark.parametrize("line", ["1. Close the suction valve.", "2 Open the drain slowly."])
def test_numbered_steps_are_not_mistaken_for_headings(line):
    chunks = chunk_document(_doc([Block("paragraph", line)], title="M", lang="en"), "d7", approx_token_count)
    assert chunks[0].title_path == ["M"] and chunks[0].text == line


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=list("ab 温度，,、。x1"), max_size=400),
       st.integers(min_value=1, max_value=40))
def test_hard_split_keeps_every_character_and_respects_the_budget(text, limit):
    pieces = _hard_split(text, approx_token_count, limit)
    assert "".join(pieces) == text
    assert all(approx_token_count(p) <= limit or len(p) == 1 for p in pieces)


def test_separator_ended_pieces_do_not_recurse_forever():
    text = ("x" * 300 + "，") * 3
    pieces = _hard_split(text, approx_token_count, 20)
    assert "".join(pieces) == text and all(approx_token_count(p) <= 20 for p in pieces)


def test_flat_numbered_headings_nest_by_their_numbers():
    blocks = [Block("heading", "1 材料与方法", level=1), Block("heading", "1.2 试验设计", level=1),
              Block("heading", "1.2.2 灌水处理", level=1), Block("paragraph", "设置3个灌水水平。"),
              Block("heading", "2 结果", level=1), Block("paragraph", "产量提高了12%。")]
    chunks = chunk_document(_doc(blocks, title="论文", kind="crop"), "d8", approx_token_count)
    assert [c.title_path for c in chunks] == [["论文", "1 材料与方法", "1.2 试验设计", "1.2.2 灌水处理"], ["论文", "2 结果"]]


def test_us_regulation_outline_headings_give_the_path():
    text = ("(a) Scope, application, and purpose —\n(1) Scope.\n(i) This standard covers servicing and maintenance.\n"
            "(2) Application.\nThis standard applies to the control of energy.\n(b) Definitions.\nAffected employee means …")
    chunks = chunk_document(_doc([Block("paragraph", text)], title="1910.147", lang="en"), "d9", approx_token_count)
    assert [c.title_path[1:] for c in chunks] == [
        ["(a) Scope, application, and purpose —", "(1) Scope."],
        ["(a) Scope, application, and purpose —", "(2) Application."],
        ["(b) Definitions."],
    ]
    assert chunks[0].text == "(i) This standard covers servicing and maintenance."


def test_numbered_chinese_headings_without_a_space():
    blocks = [Block("heading", "2.1栽培年限对番茄生长的影响", level=1), Block("paragraph", "株高增加。"),
              Block("heading", "2.2 栽培年限对氮素的影响", level=1), Block("paragraph", "吸氮量增加。")]
    chunks = chunk_document(_doc(blocks, title="论文", kind="crop"), "d10", approx_token_count)
    assert [c.title_path for c in chunks] == [["论文", "2.1栽培年限对番茄生长的影响"], ["论文", "2.2 栽培年限对氮素的影响"]]


def test_outline_title_and_text_on_one_line():
    text = ("(c) General —\n(4) Energy control procedure.\nProcedures shall be developed.\n"
            "(d) Application of control. The established procedures for the application of energy control shall cover "
            "the following elements and actions.\n(4) Lockout or tagout device application.\nDevices shall be affixed.")
    chunks = chunk_document(_doc([Block("paragraph", text)], title="1910.147", lang="en"), "d11", approx_token_count)
    assert [c.title_path[1:] for c in chunks] == [
        ["(c) General —", "(4) Energy control procedure."],
        ["(d) Application of control."],
        ["(d) Application of control.", "(4) Lockout or tagout device application."],
    ]
    assert chunks[1].text.startswith("The established procedures")
