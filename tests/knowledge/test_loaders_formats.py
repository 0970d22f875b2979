"""Markdown, plain text, HTML and DOCX loading, and the dispatcher's error handling."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from knowledge.errors import IngestError, UnsupportedFileError
from assistant.settings import IngestSettings
from knowledge.text import detect_lang
from knowledge.loaders import SUPPORTED_SUFFIXES, load_document
from knowledge.types import LoadedDocument


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _kinds(doc: LoadedDocument) -> list[str]:
    return [b.kind for b in doc.blocks]


# --- Markdown ---------------------------------------------------------------------------------

MARKDOWN = """---
title: Pump handbook
kind: manual
asset: P-101
effective_date: 2024-03-01
owner: maintenance team
---

# Irrigation pump P-101

Intro paragraph with a [link](https://example.com/x) and **bold** text,
wrapped over two lines.

<!-- INFO END -->

## Maintenance

- Check the seals
- Replace the filter
  every month
1. Stop the pump

| Part | Interval |
|------|---------:|
| Seal | weekly |
| Filter \\| mesh | monthly |

```bash
systemctl stop pump   # keep   spacing
```

Setext heading
--------------

温室内的灌溉水泵应当
定期检查。
第一条 水泵由专人管理。

> Quoted warning text.

Hard\\
break
"""


def test_markdown_structure_and_front_matter(tmp_path, ingest):
    doc = load_document(_write(tmp_path / "pump.md", MARKDOWN), tmp_path, ingest)
    assert doc.meta.title == "Pump handbook"
    assert doc.meta.kind == "manual" and doc.meta.asset == "P-101"
    assert doc.meta.effective_date == "2024-03-01"
    assert doc.meta.extra == {"owner": "maintenance team"}
    assert doc.meta.lang == "en"
    headings = [(b.level, b.text) for b in doc.blocks if b.kind == "heading"]
    assert headings == [(1, "Irrigation pump P-101"), (2, "Maintenance"), (2, "Setext heading")]
    texts = [b.text for b in doc.blocks]
    assert "Intro paragraph with a link and bold text, wrapped over two lines." in texts
    assert not any("INFO END" in t or "<!--" in t for t in texts)
    items = [b.text for b in doc.blocks if b.kind == "list_item"]
    assert items == ["Check the seals", "Replace the filter every month", "Stop the pump"]
    table = next(b for b in doc.blocks if b.kind == "table")
    assert table.rows == [["Part", "Interval"], ["Seal", "weekly"], ["Filter | mesh", "monthly"]]
    assert "systemctl stop pump   # keep   spacing" in texts  # code kept verbatim
    assert "温室内的灌溉水泵应当定期检查。" in texts  # no space between Chinese lines
    assert "第一条 水泵由专人管理。" in texts  # a clause marker starts its own paragraph
    assert "Quoted warning text." in texts
    assert "Hard\nbreak" in texts
    # reading order
    assert texts.index("Maintenance") < texts.index("Check the seals") < texts.index("Setext heading")


def test_markdown_html_table_with_spans(tmp_path, ingest):
    text = (
        "# Trial\n\n"
        '<html><body><table><tr><td rowspan="2">Year</td><td colspan="2">Height (cm)</td></tr>'
        "<tr><td>1st</td><td>2nd</td></tr><tr><td>0</td><td>7.9</td><td>8.1</td></tr></table></body></html>\n\n"
        "After the table.\n"
    )
    doc = load_document(_write(tmp_path / "trial.md", text), tmp_path, ingest)
    table = next(b for b in doc.blocks if b.kind == "table")
    assert table.rows == [
        ["Year", "Height (cm)", "Height (cm)"],
        ["Year", "1st", "2nd"],
        ["0", "7.9", "8.1"],
    ]
    assert doc.blocks[-1].text == "After the table."


def test_markdown_title_defaults_to_first_h1_then_stem(tmp_path, ingest):
    doc = load_document(_write(tmp_path / "a.md", "Intro\n\n## Sub\n\n# Real title\n\ntext"), None, ingest)
    assert doc.meta.title == "Real title"
    doc = load_document(_write(tmp_path / "no-heading.md", "just text"), None, ingest)
    assert doc.meta.title == "no-heading"


def test_markdown_liquid_and_kramdown_markup(tmp_path, ingest):
    text = (
        '* toc\n{:toc}\n\n# Safety\n\n{%\ninclude callout.html\ntype="warning"\ntitle="Careful"\n'
        'content="Unplug before service."\n%}\n\nSee [[Power supply]] and <i>the</i> manual.\n'
    )
    doc = load_document(_write(tmp_path / "s.md", text), None, ingest)
    assert [b.text for b in doc.blocks] == [
        "Safety", "Careful: Unplug before service.", "See Power supply and the manual."
    ]


def test_markdown_bad_front_matter(tmp_path, ingest):
    with pytest.raises(IngestError) as info:
        load_document(_write(tmp_path / "bad.md", "---\ntitle: [unclosed\n---\n\ntext\n"), None, ingest)
    assert "front matter" in info.value.reason


def test_real_chinese_regulation(corpus, ingest):
    path = corpus / "regulations_zh" / "安全生产法(2021-06-10).md"
    doc = load_document(path, corpus, ingest)
    assert doc.source == "regulations_zh/安全生产法(2021-06-10).md"
    assert doc.meta.kind == "regulation" and doc.meta.lang == "zh"
    assert doc.meta.title == "中华人民共和国安全生产法"
    assert (2, "第一章 总则") in [(b.level, b.text) for b in doc.blocks if b.kind == "heading"]
    assert any(b.kind == "paragraph" and b.text.startswith("第一条 为了加强安全生产工作") for b in doc.blocks)
    assert "INFO END" not in doc.text


def test_real_manual_and_agronomy(corpus, ingest):
    doc = load_document(corpus / "manuals" / "farmbot-genesis-v1.6-product-safety.md", corpus, ingest)
    assert doc.meta.kind == "manual" and doc.meta.title == "Product Safety"
    tables = [b for b in doc.blocks if b.kind == "table"]
    assert tables[0].rows[0] == ["Hazard", "Description", "Precautions"]
    assert tables[0].rows[1][0] == "Heavy boxes"
    assert "{%" not in doc.text and "Safety first: Adhering" in doc.text

    doc = load_document(corpus / "agronomy" / "ChinaXiv-201711.01720V1.md", corpus, ingest)
    assert doc.meta.kind == "crop" and doc.meta.lang == "zh"
    assert sum(b.kind == "table" for b in doc.blocks) == 4
    assert "<td" not in doc.text


# --- plain text -------------------------------------------------------------------------------


def test_plain_text_paragraphs(tmp_path, ingest):
    text = (
        "\ufeffPump notes\n\nThe pump must be checked\nevery week.\n\n\n"
        "温室内的灌溉水泵应当\n定期检查。\n第一条 水泵由专人管理。\n第二条 记录存档。\n• Check seals\n"
    )
    doc = load_document(_write(tmp_path / "notes.txt", text), None, ingest)
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("paragraph", "Pump notes"),
        ("paragraph", "The pump must be checked every week."),
        ("paragraph", "温室内的灌溉水泵应当定期检查。"),
        ("paragraph", "第一条 水泵由专人管理。"),
        ("paragraph", "第二条 记录存档。"),
        ("list_item", "• Check seals"),
    ]
    assert doc.meta.title == "notes"


def test_plain_text_gb18030_and_utf16(tmp_path, ingest):
    doc = load_document(_write(tmp_path / "gbk.txt", "温室灌溉水泵维护规程\n\n每周检查一次。", "gb18030"), None, ingest)
    assert doc.text == "温室灌溉水泵维护规程\n每周检查一次。"
    assert doc.meta.lang == "zh" and any("GB18030" in w for w in doc.warnings)
    doc = load_document(_write(tmp_path / "u16.txt", "Valve check", "utf-16"), None, ingest)
    assert doc.text == "Valve check"


def test_binary_text_file_refused(tmp_path, ingest):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"abc\x00\x01\x02" * 100)
    with pytest.raises(IngestError) as info:
        load_document(path, None, ingest)
    assert "binary" in info.value.reason


# --- HTML -------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Pump guide</title>
<style>p { color: red }</style></head><body>
<nav><a href="/">Home</a></nav><script>var secret = 1;</script>
<h1>Irrigation <em>pump</em></h1><!-- hidden comment -->
<p>Check the   seals
 every week.<br>Log the reading.</p>
<div>Loose text <b>bold</b><p>Inner paragraph</p></div>
<h3>温室 安全</h3><p>温室内的
灌溉水泵应当定期检查。</p>
<ul><li>First<ul><li>Nested</li></ul></li><li>Second</li></ul>
<table><tr><th>Part</th><th>Interval</th></tr>
<tr><td rowspan="2">Seal</td><td>weekly</td></tr><tr><td>monthly</td></tr></table>
</body></html>"""


def test_html_blocks(tmp_path, ingest):
    doc = load_document(_write(tmp_path / "guide.html", HTML), None, ingest)
    assert doc.meta.title == "Pump guide"
    assert [(b.kind, b.level, b.text) for b in doc.blocks if b.kind != "table"] == [
        ("heading", 1, "Irrigation pump"),
        ("paragraph", 0, "Check the seals every week.\nLog the reading."),
        ("paragraph", 0, "Loose text bold"),
        ("paragraph", 0, "Inner paragraph"),
        ("heading", 3, "温室安全"),
        ("paragraph", 0, "温室内的灌溉水泵应当定期检查。"),
        ("list_item", 0, "First"),
        ("list_item", 0, "Nested"),
        ("list_item", 0, "Second"),
    ]
    table = doc.blocks[-1]
    assert table.kind == "table" and table.rows == [["Part", "Interval"], ["Seal", "weekly"], ["Seal", "monthly"]]
    assert "secret" not in doc.text and "Home" not in doc.text and "hidden" not in doc.text


def test_html_declared_charset(tmp_path, ingest):
    html = '<html><head><meta charset="gbk"></head><body><p>卷帘机操作规程</p></body></html>'
    doc = load_document(_write(tmp_path / "gbk.htm", html, "gbk"), None, ingest)
    assert doc.text == "卷帘机操作规程"


# --- DOCX -------------------------------------------------------------------------------------


def _make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Boiler manual"
    document.add_heading("Boiler B-2", level=1)
    document.add_paragraph("The boiler heats the greenhouse at night.")
    document.add_heading("Safety", level=2)
    document.add_paragraph("Wear gloves", style="List Bullet")
    document.add_paragraph("Close the gas valve", style="List Number")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([["Part", "Interval"], ["Burner", "monthly"], ["Flue", "yearly"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("")
    document.add_paragraph("第一条 锅炉应当由持证人员操作。")
    document.save(str(path))
    return path


def test_docx_blocks_in_order(tmp_path, ingest):
    doc = load_document(_make_docx(tmp_path / "boiler.docx"), None, ingest)
    assert doc.meta.title == "Boiler manual"
    assert [(b.kind, b.level, b.text) for b in doc.blocks if b.kind != "table"] == [
        ("heading", 1, "Boiler B-2"),
        ("paragraph", 0, "The boiler heats the greenhouse at night."),
        ("heading", 2, "Safety"),
        ("list_item", 0, "Wear gloves"),
        ("list_item", 0, "Close the gas valve"),
        ("paragraph", 0, "第一条 锅炉应当由持证人员操作。"),
    ]
    assert _kinds(doc)[5] == "table"
    assert doc.blocks[5].rows == [["Part", "Interval"], ["Burner", "monthly"], ["Flue", "yearly"]]


def test_broken_docx_files(tmp_path, ingest):
    not_zip = _write(tmp_path / "fake.docx", "plain text pretending")
    with pytest.raises(IngestError) as info:
        load_document(not_zip, None, ingest)
    assert "not a DOCX" in info.value.reason
    empty_zip = tmp_path / "empty.docx"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("hello.txt", "no word document here")
    with pytest.raises(IngestError) as info:
        load_document(empty_zip, None, ingest)
    assert type(info.value) is IngestError


# --- dispatcher -------------------------------------------------------------------------------


def test_supported_suffixes():
    assert {".pdf", ".md", ".markdown", ".txt", ".html", ".htm", ".docx"} == SUPPORTED_SUFFIXES


def test_unsupported_and_missing_files(tmp_path, ingest):
    with pytest.raises(UnsupportedFileError):
        load_document(_write(tmp_path / "image.png", "x"), None, ingest)
    with pytest.raises(UnsupportedFileError) as info:
        load_document(_write(tmp_path / "a.md.meta.yaml", "kind: manual"), None, ingest)
    assert "sidecar" in info.value.reason
    with pytest.raises(IngestError) as info:
        load_document(tmp_path / "missing.md", None, ingest)
    assert "cannot open" in info.value.reason
    with pytest.raises(IngestError) as info:
        load_document(_write(tmp_path / "empty.md", ""), None, ingest)
    assert info.value.reason == "empty file"
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(IngestError) as info:
        load_document(tmp_path / "folder.md", None, ingest)
    assert "regular file" in info.value.reason
    with pytest.raises(IngestError) as info:
        load_document(_write(tmp_path / "blank.md", "\n\n<!-- only a comment -->\n"), None, ingest)
    assert "no text" in info.value.reason


def test_upper_case_suffix_and_size_limit(tmp_path):
    path = _write(tmp_path / "NOTES.TXT", "Pump check " * 200)
    assert load_document(path, None, IngestSettings()).blocks
    with pytest.raises(IngestError) as info:
        load_document(path, None, IngestSettings(max_file_mb=0.001))
    assert "MB limit" in info.value.reason


def test_detect_lang():
    assert detect_lang("温室内的灌溉水泵应当定期检查，检查 pump P-101 的 seal。") == "zh"
    assert detect_lang("Check the pump seals weekly; see 灰霉病 for the disease.") == "en"
    assert detect_lang("") == "en"


@pytest.mark.parametrize(
    "text",
    [
        "__" * 50_000,
        "[" * 100_000,
        "{%" * 50_000,
        "<!--" * 50_000,
        "a|b\n" + " " * 100_000 + "x",
        "**x" * 30_000,
        "{% " + "a" * 100_000 + " %}",
        "x" * 100_000 + "-\n" + "y" * 100_000,
    ],
)
def test_hostile_markdown_is_fast(tmp_path, ingest, text):
    import time

    start = time.monotonic()
    try:
        load_document(_write(tmp_path / "h.md", text), None, ingest)
    except IngestError:
        pass
    assert time.monotonic() - start < 2


def test_hostile_pdf_text_is_fast():
    import time

    from knowledge.loaders.pdf_clean import clean_pages

    start = time.monotonic()
    clean_pages(["a" * 200_000 + "-\n", "x-" * 100_000, "第" * 100_000])
    assert time.monotonic() - start < 2
