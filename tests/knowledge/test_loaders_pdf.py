"""PDF loading: generated PDFs, the child-process limits, OCR, clean-up, real sample files."""

from __future__ import annotations

import time

import pytest

from knowledge.errors import IngestError
from assistant.settings import IngestSettings
from knowledge.loaders import load_document
from knowledge.loaders.pdf import run_worker
from knowledge.loaders.ocr import column_regions, layout_text, model_files
from knowledge.loaders.pdf_clean import (
    clean_pages,
    dehyphenate,
    is_page_number,
    join_lines,
    normalize_spaces,
    remove_headers_footers,
    split_blocks,
    strip_invisible,
)
from knowledge.types import LoadedDocument
from tests.knowledge import pdf_factory


def _page_text(doc: LoadedDocument, page: int) -> str:
    return "\n".join(b.text for b in doc.blocks if b.page == page)


# --- generated PDFs ---------------------------------------------------------------------------


def test_english_multipage_keeps_pages_and_text(english_pdf, ingest):
    path, markers = english_pdf
    doc = load_document(path, path.parent, ingest)
    assert doc.pages == 3
    assert all(b.page in (1, 2, 3) for b in doc.blocks)
    for number, marker in enumerate(markers, 1):
        assert marker in _page_text(doc, number)
    assert "valve" in _page_text(doc, 2) and "valve" not in _page_text(doc, 1)
    # Wrapped lines joined into one paragraph; the paragraph gap and the heading split blocks.
    texts = [b.text for b in doc.blocks if b.page == 1]
    assert texts[0] == "Pump maintenance"
    assert any(t.startswith(markers[0]) and t.endswith("into the log.") for t in texts)
    assert "Spare parts for the pump are kept in cabinet 10." in texts
    assert all(b.kind == "paragraph" for b in doc.blocks)
    assert doc.meta.lang == "en" and doc.meta.title == "english" and doc.meta.kind == "other"
    assert doc.source == "english.pdf"
    assert doc.warnings == []


def test_chinese_pdf_extracts_clauses_without_spaces(chinese_pdf, ingest):
    path, paragraphs = chinese_pdf
    doc = load_document(path, None, ingest)
    assert doc.meta.lang == "zh"
    texts = [b.text for b in doc.blocks]
    assert texts[0] == "第一章 总则"
    # fpdf2 wraps after "第一条 ", so the clause text starts on the next line: joined back.
    assert texts[1] == paragraphs[1]
    assert texts[2].startswith("第二条 温室内使用的灌溉水泵")
    assert texts[3] == paragraphs[3]
    assert all(b.page == 1 for b in doc.blocks)


def test_image_only_page_is_ocrd(scanned_pdf, ingest):
    doc = load_document(scanned_pdf, None, ingest)
    assert doc.pages == 2
    assert "roof vents" in _page_text(doc, 1)
    page2 = _page_text(doc, 2).lower()
    for word in ("irrigation", "pump", "valve", "service"):
        assert word in page2
    assert doc.meta.extra["ocr_pages"] == [2]
    assert any("page 2" in w and "OCR" in w for w in doc.warnings)


def test_image_only_page_skipped_with_warning_when_ocr_off(scanned_pdf):
    doc = load_document(scanned_pdf, None, IngestSettings(ocr=False))
    assert {b.page for b in doc.blocks} == {1}
    assert "ocr_pages" not in doc.meta.extra
    assert any("page 2" in w and "OCR is off" in w for w in doc.warnings)


def test_missing_rapidocr_skips_the_page_not_the_file(scanned_pdf, tmp_path, monkeypatch):
    # A stand-in rapidocr package that fails to import, first on the worker's import path.
    fake = tmp_path / "site" / "rapidocr"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('simulated: rapidocr not installed')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    doc = load_document(scanned_pdf, None, IngestSettings())
    assert {b.page for b in doc.blocks} == {1}
    assert any("page 2" in w and "OCR unavailable" in w and "simulated" in w for w in doc.warnings)


def test_ocr_page_limit_warns_instead_of_ocr(scanned_pdf):
    doc = load_document(scanned_pdf, None, IngestSettings(ocr_max_pages=0))
    assert {b.page for b in doc.blocks} == {1}
    assert any("page 2" in w for w in doc.warnings)


def test_garbled_text_layer_is_ocrd_and_the_reason_recorded(tmp_path, ingest):
    path = tmp_path / "garbled.pdf"
    pdf_factory.garbled_text_pdf(path)  # every reader gets private-use code points; it renders fine
    doc = load_document(path, None, ingest)
    assert "\ue001" not in doc.text
    text = doc.text.lower()
    assert "close the main valve" in text and "pressure gauge" in text
    assert doc.meta.extra["ocr_pages"] == [1]
    assert doc.meta.extra["ocr_reasons"]["1"].startswith("garbled text layer (")
    assert "private-use" in doc.meta.extra["garbled_pages"]["1"]
    assert any(w.startswith("page 1: garbled text layer") and w.endswith("text from OCR") for w in doc.warnings)


def test_garbled_text_layer_is_dropped_when_ocr_is_off(tmp_path):
    path = tmp_path / "garbled.pdf"
    pdf_factory.garbled_text_pdf(path)
    with pytest.raises(IngestError) as info:  # nothing readable is left, and garbage is not kept
        load_document(path, None, IngestSettings(ocr=False))
    assert "garbled text layer" in info.value.reason and "OCR is off" in info.value.reason


def test_two_column_scan_is_read_column_by_column(tmp_path, ingest):
    path = tmp_path / "two-columns.pdf"
    pdf_factory.image_pdf(path, pdf_factory.two_column_png())
    doc = load_document(path, None, ingest)
    text = " ".join(doc.text.split())
    assert text.index("GREENHOUSE SERVICE NOTES") < text.index("Pumps are checked")
    left = " ".join(pdf_factory.LEFT_COLUMN)
    right = " ".join(pdf_factory.RIGHT_COLUMN)
    assert left in text and right in text  # each column whole, not interleaved line by line
    assert text.index(left) < text.index(right)


def test_column_regions_split_prose_columns_not_tables():
    import io

    import numpy as np
    from PIL import Image

    page = np.asarray(Image.open(io.BytesIO(pdf_factory.two_column_png())).convert("RGB"))
    regions = column_regions(page)
    assert [(left, right) for _, _, left, right in regions] == [(0, 1654), (0, 739), (739, 1654)]
    assert regions[0][1] <= regions[1][0]  # the title band first, then the columns below it
    table = np.full((600, 1600, 3), 255, dtype=np.uint8)
    for row in range(8):  # short cells in aligned columns: a table, read across
        for col in range(4):
            table[40 + row * 60: 70 + row * 60, 100 + col * 400: 100 + col * 400 + 90] = 0
    assert column_regions(table) == [(0, 600, 0, 1600)]


def test_headers_footers_and_hyphenation_cleaned(header_footer_pdf, ingest):
    doc = load_document(header_footer_pdf, None, ingest)
    assert doc.pages == 4
    text = doc.text
    assert pdf_factory.HEADER not in text
    assert "Page 1 of 4" not in text and "of 4" not in text
    assert "routine maintenance of every irrigation pump" in text
    assert "mainte-" not in text and "mainte " not in text
    assert "the Type-A nameplate of the valve." in _page_text(doc, 2)  # a real hyphen stays
    assert [b.text for b in doc.blocks if b.page == 3][0] == "Section Heater"


def test_malformed_bytes_raise_ingest_error(tmp_path, ingest):
    bad = tmp_path / "garbage.pdf"
    bad.write_bytes(pdf_factory.garbage_pdf_bytes())
    with pytest.raises(IngestError) as info:
        load_document(bad, tmp_path, ingest)
    assert info.value.source == "garbage.pdf"
    assert info.value.reason.startswith("malformed PDF")


def test_truncated_pdf_is_error_or_document(tmp_path, ingest):
    cut = tmp_path / "truncated.pdf"
    cut.write_bytes(pdf_factory.truncated_pdf_bytes(tmp_path / "whole.pdf"))
    try:
        doc = load_document(cut, None, ingest)
    except IngestError as exc:
        assert exc.reason
    else:
        assert doc.blocks


def test_worker_killed_on_timeout(tmp_path):
    slow = tmp_path / "slow.pdf"
    slow.write_bytes(pdf_factory.flate_bomb_pdf_bytes(decompressed_mb=4))  # seconds of pypdf work
    start = time.monotonic()
    with pytest.raises(IngestError) as info:
        load_document(slow, None, IngestSettings(pdf_timeout_s=1))
    assert "timed out after 1 s" in info.value.reason
    assert time.monotonic() - start < 5


def test_worker_memory_limit(tmp_path):
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(pdf_factory.flate_bomb_pdf_bytes(decompressed_mb=60))
    with pytest.raises(IngestError) as info:
        load_document(bomb, None, IngestSettings(pdf_memory_mb=128, pdf_timeout_s=60))
    assert "memory limit" in info.value.reason


def test_too_many_pages_refused(english_pdf):
    path, _ = english_pdf
    with pytest.raises(IngestError) as info:
        load_document(path, None, IngestSettings(max_pages=2))
    assert "3 pages" in info.value.reason and "limit of 2" in info.value.reason


def test_too_large_file_refused(english_pdf):
    path, _ = english_pdf
    with pytest.raises(IngestError) as info:
        load_document(path, None, IngestSettings(max_file_mb=0.001))
    assert "MB limit" in info.value.reason


def test_ocr_models_ship_in_the_wheel():
    files = model_files()
    assert files["det"].is_file() and files["rec"].is_file()
    assert "rapidocr" in files["det"].parts


# --- pdf_clean: pure functions ----------------------------------------------------------------


def test_dehyphenate_joins_broken_words_only():
    assert dehyphenate("routine mainte-\nnance of pumps") == "routine maintenance of pumps"
    assert dehyphenate("the Type-\nA pump") == "the Type-\nA pump"
    assert dehyphenate("COVID-\n19") == "COVID-\n19"


def test_strip_invisible_and_spaces():
    text = "\ufeffPump\u200b A\u00adB \u202eC\u202c\x07 D\u2060"
    assert strip_invisible(text) == "Pump AB C D"
    assert strip_invisible("mainte\u00ad\nnance") == "mainte-\nnance"  # soft hyphen at line end
    assert normalize_spaces("温室\u3000灌溉\u00a0\u00a0pump  \t A ") == "温室 灌溉 pump A"


@pytest.mark.parametrize(
    "line", ["3", "- 3 -", "— 12 —", "Page 3", "page 3 of 10", "3 / 10", "第 3 页", "第3页 共10页", "iv"]
)
def test_page_numbers_recognised(line):
    assert is_page_number(line)


@pytest.mark.parametrize("line", ["3.2.1 Pump", "Page three", "第三条 总则", "Check valve 3", "Civil"])
def test_not_page_numbers(line):
    assert not is_page_number(line)


def test_running_headers_and_footers_removed():
    pages = [
        f"ACME Manual Rev 2\nChapter text {word} starts here.\nBody of page {word}.\n- {n} -"
        for n, word in enumerate(["one", "two", "three", "four"], 1)
    ]
    cleaned = remove_headers_footers(pages)
    for n, page in enumerate(cleaned, 1):
        assert "ACME Manual" not in page
        assert f"- {n} -" not in page
        assert "Chapter text" in page and "Body of page" in page


def test_numbered_lines_that_do_not_follow_pages_are_kept():
    pages = [f"Intro {w}\nValve 7 check\nmiddle\nend {w}" for w in ("a", "b", "c")]
    assert all("Valve 7 check" in p for p in remove_headers_footers(pages[:2]))  # < 3 pages
    pages = [f"Table {n * 5} of data {w}\nmiddle {w}\nmore\nend {w}" for n, w in enumerate("abc", 1)]
    assert all("Table" in p for p in remove_headers_footers(pages))


def test_join_lines_cjk_and_english():
    assert join_lines(["温室内的灌溉水泵应当", "定期检查。"]) == "温室内的灌溉水泵应当定期检查。"
    assert join_lines(["Check the", "pump"]) == "Check the pump"
    assert join_lines(["采用", "PLC控制"]) == "采用PLC控制"
    assert join_lines(["Type-", "A pump"]) == "Type-A pump"
    assert join_lines(["第一条", "为了加强管理"]) == "第一条 为了加强管理"


def test_split_blocks_markers_bullets_and_short_lines():
    text = "\n".join([
        "第一章 总则",
        "第一条 为了加强温室生产安全管理，防止和减少生产安全事故，保障从业人员的生命",
        "和财产安全，制定本规定。",
        "第二条 温室内使用的灌溉水泵，应当由经过培训的人员操作，并定期检查维护，",
        "并建立记录。",
        "（一）检查水泵；",
        "3.2.1 Pump maintenance",
        "• Check the seals",
    ])
    pieces = split_blocks(text)
    assert [k for k, _ in pieces] == ["paragraph", "paragraph", "paragraph", "list_item", "paragraph", "list_item"]
    assert pieces[1][1] == (
        "第一条 为了加强温室生产安全管理，防止和减少生产安全事故，保障从业人员的生命和财产安全，制定本规定。"
    )
    assert pieces[4][1] == "3.2.1 Pump maintenance"


def test_split_blocks_english_paragraph_end_by_short_line():
    text = (
        "The irrigation pump must be inspected every week and its seals replaced\n"
        "when they leak.\n"
        "Spare parts are kept in the cabinet next to the main valve of the house\n"
        "and are counted monthly."
    )
    assert [t for _, t in split_blocks(text)] == [
        "The irrigation pump must be inspected every week and its seals replaced when they leak.",
        "Spare parts are kept in the cabinet next to the main valve of the house and are counted monthly.",
    ]


def test_clean_pages_pipeline():
    pages = [
        f"Header Line\nValve {w} notes\n\nRoutine mainte-\nnance of valve {w}\u200b.\n\nEnd of notes {w}.\n{n}"
        for n, w in enumerate("abc", 1)
    ]
    result = clean_pages(pages)
    assert result == [
        [("paragraph", f"Valve {w} notes"), ("paragraph", f"Routine maintenance of valve {w}."),
         ("paragraph", f"End of notes {w}.")]
        for w in "abc"
    ]


def test_ocr_layout_groups_lines_and_paragraphs():
    def box(x, y, w=100, h=20):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    boxes = [box(10, 10), box(150, 12), box(10, 40), box(10, 120)]
    text = layout_text(boxes, ["Close", "valve", "before", "service"], [0.9, 0.9, 0.9, 0.9])
    assert text == "Close valve\nbefore\n\nservice"
    assert layout_text(None, None, None) == ""


def test_ocr_layout_reads_columns_then_across_again():
    def box(x, y, w=400, h=30):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    boxes, texts = [box(100, 20, w=900)], ["Title across both columns"]
    for n in range(6):  # two columns of running lines sharing baselines
        boxes += [box(100, 100 + 40 * n), box(600, 100 + 40 * n)]
        texts += [f"left line {n}", f"right line {n}"]
    boxes.append(box(100, 400, w=900))
    texts.append("Footnote across the page")
    text = layout_text(boxes, texts, [0.9] * len(texts))
    lines = [line for line in text.splitlines() if line]
    assert lines == ["Title across both columns", *[f"left line {n}" for n in range(6)],
                     *[f"right line {n}" for n in range(6)], "Footnote across the page"]


def test_ocr_layout_keeps_table_rows_across():
    def box(x, y, w=60, h=30):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    boxes, texts = [], []
    for n in range(6):  # short cells in two columns: a table's rows, not two text columns
        boxes += [box(100, 100 + 40 * n), box(600, 100 + 40 * n)]
        texts += [f"k{n}", f"v{n}"]
    assert layout_text(boxes, texts, [0.9] * 12).splitlines() == [f"k{n} v{n}" for n in range(6)]


def test_ocr_layout_vertical_writing_right_to_left():
    def column(x, y, h=300):
        return [[x, y], [x + 40, y], [x + 40, y + h], [x, y + h]]

    boxes = [column(500, 50), column(440, 50), column(380, 50), column(500, 500), column(440, 500)]
    texts = ["わたくしといふ現象は", "假定された有機交流電燈の", "ひとつの青い照明です", "けれどもこれら新世代沖積世の", "巨大に明るい時間の集積のなかで"]
    assert layout_text(boxes, texts, [0.9] * 5).split("\n") == [*texts[:3], "", *texts[3:]]


# --- real sample PDFs (shared corpus) ---------------------------------------------------------


@pytest.mark.parametrize("name", ["pdfminer_encryption_aes-256.pdf", "pypdfsf_libreoffice-writer-password.pdf"])
def test_encrypted_samples(pdf_samples, ingest, name):
    with pytest.raises(IngestError) as info:
        load_document(pdf_samples / name, pdf_samples, ingest)
    assert info.value.reason == "encrypted PDF: a password is required"


@pytest.mark.parametrize("name", [
    "pdfminer_issue-1113-evil-xobjects.pdf",
    "pypdfsf_unreadablemetadata.pdf",
    "pdfplumber_malformed-from-issue-932.pdf",
    "pdfminer_zen_of_python_corrupted.pdf",
])
def test_hostile_samples_end_cleanly(pdf_samples, name):
    settings = IngestSettings(pdf_timeout_s=30, ocr=False)
    start = time.monotonic()
    try:
        doc = load_document(pdf_samples / name, None, settings)
    except IngestError as exc:
        assert exc.reason and type(exc) is IngestError
    else:
        assert doc.blocks and doc.pages
    assert time.monotonic() - start < 35


def test_pdflatex_four_pages(pdf_samples, ingest):
    doc = load_document(pdf_samples / "pypdfsf_pdflatex-4-pages.pdf", pdf_samples, ingest)
    assert doc.pages == 4
    assert {b.page for b in doc.blocks} == {1, 2, 3, 4}
    assert all(len(_page_text(doc, n)) > 1000 for n in range(1, 5))
    assert doc.meta.lang == "en"


def test_japanese_sample_garbled_by_pypdf_is_read_with_pdfium(pdf_samples, ingest):
    doc = load_document(pdf_samples / "pdfminer_jo-japanese.pdf", None, ingest)
    text = doc.text
    for phrase in ("わたくしといふ現象は", "ひとつの青い照明です", "心象スケッチ", "宮澤賢治"):
        assert phrase in text
    assert not any("\u0370" <= ch <= "\u03ff" for ch in text)  # none of pypdf's Greek soup
    assert "words mix unrelated scripts" in doc.meta.extra["garbled_pages"]["1"]
    assert any("garbled text layer" in w and "read with pdfium instead" in w for w in doc.warnings)


@pytest.mark.slow
def test_japanese_sample_ocr_reads_vertical_columns_in_order(pdf_samples):
    run = run_worker(["ocr", str(pdf_samples / "pdfminer_jo-japanese.pdf"), "--pages", "1", "--dpi", "200"],
                     3072, 120, 300)
    text = next(r["text"] for r in run.records if r.get("page") == 1)
    lines = [line for line in text.splitlines() if line]
    assert lines[:3] == ["序", "わたくしといふ現象は", "假定された有機交流電燈の"]
    assert text.index("ひとつの青い照明です") < text.index("けれどもこれら新世代沖積世の") < text.index("宮澤賢治")


@pytest.mark.slow
def test_multicolumn_sample_ocr_follows_its_columns(pdf_samples):
    run = run_worker(["ocr", str(pdf_samples / "pypdfsf_multicolumn.pdf"), "--pages", "1", "--dpi", "200"],
                     3072, 120, 300)
    text = " ".join(next(r["text"] for r in run.records if r.get("page") == 1).split())
    # The left column's last line, then the right column's first: nothing from the right in between.
    left_end = text.index("Vivamus viverra fermentum felis. Donec nonummy")
    assert text.index("This is a sample document with two columns filled with Lorem Ipsum text.") < left_end
    assert left_end < text.index("pellentesque ante. Phasellus adipiscing semper elit.")


def test_chatchat_chinese_text_layer_and_ocr(pdf_samples, ingest):
    doc = load_document(pdf_samples / "chatchat_ocr_test-zh.pdf", None, ingest)
    assert "我是文字" in doc.text
    assert doc.meta.lang == "zh"
    # The page is mostly an image: OCR adds the text drawn in it.
    assert doc.meta.extra.get("ocr_pages") == [1]
    assert "文本框" in doc.text


def test_every_sample_pdf_loads_or_fails_cleanly(pdf_samples):
    settings = IngestSettings(pdf_timeout_s=30, ocr=False)
    samples = sorted(pdf_samples.glob("*.pdf"))
    assert samples
    outcomes = {}
    for path in samples:
        start = time.monotonic()
        try:
            doc = load_document(path, pdf_samples, settings)
            assert isinstance(doc, LoadedDocument) and doc.pages and doc.source == path.name
            outcomes[path.name] = "ok"
        except IngestError as exc:
            assert exc.source == path.name and exc.reason
            outcomes[path.name] = exc.reason
        assert time.monotonic() - start < settings.pdf_timeout_s + 5, path.name
    assert outcomes["pypdfsf_pdflatex-4-pages.pdf"] == "ok"
    assert sum(v == "ok" for v in outcomes.values()) >= len(samples) // 2
