"""Tables in PDFs: rows kept with their header, from generated PDFs and the shared samples,
through the real loader (worker process, pdfplumber), the chunker and a real small index."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from assistant.settings import IngestSettings
from knowledge.builder import build_index
from knowledge.chunking import chunk_document
from knowledge.embedding import FakeEmbedder
from knowledge.loaders import load_document
from knowledge.loaders.pdf import run_worker
from knowledge.loaders.pdf_clean import clean_pages, table_mark
from knowledge.loaders.pdf_tables import cell_text, page_transform
from knowledge.retrieval import Retriever
from knowledge.settings import ChunkingSettings
from knowledge.types import LoadedDocument
from tests.knowledge import pdf_factory
from tests.knowledge.conftest_index import fake_settings


def _tables(doc: LoadedDocument) -> list:
    return [b for b in doc.blocks if b.kind == "table"]


def _prose(doc: LoadedDocument) -> str:
    return "\n".join(b.text for b in doc.blocks if b.kind != "table")


@pytest.fixture(scope="module")
def table_doc(tmp_path_factory) -> LoadedDocument:
    path = tmp_path_factory.mktemp("tables") / "schedule.pdf"
    pdf_factory.table_pdf(path)
    return load_document(path, None, IngestSettings(pdf_timeout_s=60))


# --- generated PDFs ---------------------------------------------------------------------------


def test_ruled_table_keeps_rows_header_and_pages(table_doc):
    fertilizer = [t for t in _tables(table_doc) if t.rows[0][0] == "Crop"]
    header = [h.replace("\n", " ") for h in pdf_factory.FERTILIZER_HEADER]
    assert header == ["Crop", "Growth stage", "Nitrogen (kg/ha)", "Irrigation interval (days)"]
    # The table runs onto page 2 without repeating its header: that part keeps page 1's header.
    assert [(t.page, t.rows[0]) for t in fertilizer] == [(1, header), (2, header)]
    rows = [row for t in fertilizer for row in t.rows[1:]]
    assert rows == pdf_factory.FERTILIZER_ROWS  # every row once, the empty cell kept as ""
    assert ["Cucumber", "Seedling", "", "4"] in rows


def test_table_text_is_not_also_running_text(table_doc):
    prose = _prose(table_doc)
    assert "Fertilizer schedule." in prose and "Fungicide doses are given" in prose
    for value in ("Transplanting", "Lettuce 12", "Irrigation interval", "Copper oxychloride", "Downy mildew"):
        assert value not in prose


def test_merged_header_cell_labels_its_sub_columns(table_doc):
    dose = next(t for t in _tables(table_doc) if t.rows[0][0] == "Product")
    assert dose.rows == [["Product", "Disease", "Dose (g/L) Min", "Dose (g/L) Max"], *pdf_factory.DOSE_ROWS]


def test_framed_note_and_lone_rule_are_not_tables(table_doc):
    assert len(_tables(table_doc)) == 3
    assert any(b.text.startswith("Note: wear gloves") for b in table_doc.blocks if b.kind == "paragraph")


def test_reading_order_puts_tables_between_their_paragraphs(table_doc):
    kinds = [(b.kind, b.page) for b in table_doc.blocks]
    assert kinds[0] == ("paragraph", 1) and kinds[1] == ("table", 1) and kinds[2] == ("table", 2)
    assert table_doc.blocks[3].text.startswith("Fungicide doses")


def test_chunks_of_a_long_table_repeat_the_header(table_doc):
    chunks = chunk_document(table_doc, "doc", FakeEmbedder().count_tokens, ChunkingSettings(max_tokens=60))
    header_line = "| Crop | Growth stage | Nitrogen (kg/ha) | Irrigation interval (days) |"
    lettuce = [c for c in chunks if "| Lettuce" in c.text]
    assert len(lettuce) > 3
    assert all(c.text.splitlines()[0] == header_line for c in lettuce)
    assert {c.page for c in lettuce} == {1, 2}
    assert any("| Lettuce 39 | Heading | 59 | 5 |" in c.text and c.page == 2 for c in lettuce)


def test_three_line_table_without_vertical_rules(tmp_path):
    path = tmp_path / "trial.pdf"
    pdf_factory.three_line_table_pdf(path)
    doc = load_document(path, None, IngestSettings(pdf_timeout_s=60))
    (table,) = _tables(doc)
    assert table.rows == [pdf_factory.THREE_LINE_HEADER, *pdf_factory.THREE_LINE_ROWS]
    assert doc.blocks[0].text.startswith("Table 2: Yield and sugar content")  # the caption stays
    assert "82.5" not in _prose(doc) and "sweetest fruit" in _prose(doc)


def test_table_search_stops_at_its_time_budget_and_keeps_the_text(tmp_path):
    path = tmp_path / "schedule.pdf"
    pdf_factory.table_pdf(path)
    run = run_worker(["extract", str(path), "--table-seconds", "0.001"], 1536, 60, 65)
    (result,) = [r for r in run.records if r.get("ok")]
    notes = result["tables"]["notes"]
    assert any("budget" in note or "stopped" in note for note in notes)
    texts = "\n".join(p["text"] for p in result["pages"])
    assert "Lettuce 39" in texts and "Copper oxychloride" in texts  # flat, but not lost


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_page_transform_matches_pdfplumber_on_turned_pages(tmp_path, rotation):
    import pdfplumber

    path = tmp_path / "trial.pdf"
    pdf_factory.three_line_table_pdf(path)
    writer = PdfWriter()
    for page in PdfReader(path).pages:
        writer.add_page(page)
        writer.pages[-1].rotate(rotation)
    turned = tmp_path / f"turned{rotation}.pdf"
    writer.write(turned)
    page = PdfReader(turned).pages[0]
    origins = []

    def visit(text, cm, tm, font_dict, font_size):
        if text.startswith("Moneymaker"):
            origins.append((tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]))

    page.extract_text(visitor_text=visit)
    x, y = page_transform(tuple(float(v) for v in page.mediabox), page.rotation)(*origins[0])
    with pdfplumber.open(turned) as pdf:
        m = next(c for c in pdf.pages[0].chars if c["text"] == "M")
        assert m["x0"] - 3 <= x <= m["x1"] + 3 and m["top"] - 3 <= y <= m["bottom"] + 3


def test_cell_text_drops_leaders_icons_and_unmapped_glyphs():
    assert cell_text("Stabilizer wiring change ......................") == "Stabilizer wiring change"
    assert cell_text("Up to $3,790 . . . . . . . .") == "Up to $3,790"
    assert cell_text("Indonesia \U000f03d9") == "Indonesia"
    assert cell_text("x (cid:0) 2") == "x 2"
    assert cell_text("  two\nlines\u200b ") == "two lines"


def test_table_marks_survive_cleaning_in_place():
    words = ["pump", "valve", "heater", "fan"]
    # The mark is the first line after the running head: it must not hide the head from the
    # header/footer removal, nor be removed as one itself.
    pages = [f"Running head\n{table_mark(0)}\nAbout the {w}.\nMore on the {w}.\n{n}" for n, w in enumerate(words, 1)]
    for w, pieces in zip(words, clean_pages(pages)):
        assert pieces == [("table", table_mark(0)), ("paragraph", f"About the {w}. More on the {w}.")]


# --- shared sample PDFs -----------------------------------------------------------------------

NICS = "pdfplumber_nics-background-checks-2015-11.pdf"
SENATE = "pdfplumber_senate-expenditures.pdf"
REGISTER = "pdfplumber_federal-register-2020-17221.pdf"


@pytest.fixture(scope="module")
def samples(request) -> Path:
    from tests.knowledge.conftest import PDF_SAMPLES

    if not PDF_SAMPLES.is_dir():
        pytest.skip(f"sample PDFs not found at {PDF_SAMPLES}")
    return PDF_SAMPLES


@pytest.fixture(scope="module")
def loaded(samples) -> dict[str, LoadedDocument]:
    settings = IngestSettings(pdf_timeout_s=60)
    return {name: load_document(samples / name, samples, settings) for name in (NICS, SENATE, REGISTER)}


def test_nics_rows_with_sub_column_headers(loaded):
    doc = loaded[NICS]
    (table,) = _tables(doc)
    header = table.rows[0]
    assert len(header) == 25
    assert header[:7] == ["State / Territory", "Permit", "Handgun", "Long Gun", "*Other", "**Multiple", "Admin"]
    assert "Pre-Pawn Handgun" in header and "Returned/Disposition Long Gun" in header
    assert header[-4:] == ["Return to Seller - Private Sale Handgun", "Return to Seller - Private Sale Long Gun",
                           "Return to Seller - Private Sale *Other", "Totals"]
    rows = {row[0]: row for row in table.rows[1:]}
    assert len(rows) == 56  # 50 states, DC, five territories and the totals line
    assert rows["Texas"][:4] == ["Texas", "21,550", "56,941", "51,670"]
    assert rows["Texas"][-1] == "146,982"
    assert rows["Totals"][-1] == "2,236,457"
    texts = [b.text for b in doc.blocks if b.kind == "paragraph"]
    assert "NICS Firearm Background Checks November - 2015" in texts  # the title row, outside the rows
    assert any(t.startswith("NOTES:") for t in texts)  # the footnotes drawn inside the grid
    assert "Alabama" not in _prose(doc)


def test_senate_statement_rows_without_inner_rules(loaded):
    (table,) = _tables(loaded[SENATE])
    assert table.rows[0] == ["DOCUMENT NO.", "DATE POSTED", "PAYEE NAME", "OBLIGATION/SERVICE DATES START",
                             "OBLIGATION/SERVICE DATES END", "DESCRIPTION", "AMOUNT ($)"]
    assert ["", "", "BAIN, J MATTHEW", "", "", "DISTRICT DIRECTOR", "37,499.96"] in table.rows
    rows = {row[0]: row for row in table.rows if row[0]}
    assert rows["DHAW20190045"][1:5] == ["07/10/2019", "CITIBANK - SENATOR IBA CARD", "06/29/2019", "07/07/2019"]
    assert rows["DHAW20190045"][5].startswith("STAFF TRANSPORTATION AIRFARE FOR SEN HAWLEY AS FOLLOWS")
    assert rows["DHAW20190045"][6] == "1,112.00"
    assert len(table.rows) == 33  # header, 10 salaries, 22 travel items
    assert table.page == 1
    # pypdf reads this file's table font as garbage; the rows come from pdfplumber, and what is
    # left of the page's own text is clean.
    assert "ST/uuTR/NSPORT" not in _prose(loaded[SENATE])


def test_federal_register_cost_table_across_two_pages(loaded):
    tables = _tables(loaded[REGISTER])
    header = ["Action", "Labor cost", "Parts cost", "Cost per product", "Cost on U.S. operators"]
    assert [(t.page, t.rows[0]) for t in tables] == [(5, header), (6, header)]
    assert tables[0].rows[1] == ["FCC OPS installation and verification", "1 work-hour × $85 per hour = $85",
                                 "$0", "$85", "$6,205."]
    assert tables[0].rows[3][0] == "MDS installation and verification, INOP marker removal."
    assert tables[1].rows[2] == ["AOA sensor system test", "40 work-hours × $85 per hour = $3,400.", "$0",
                                 "$3,400", "$248,200."]


def test_booktabs_table_in_a_two_column_paper(samples):
    doc = load_document(samples / "pypdfsf_multicolumn.pdf", None, IngestSettings(pdf_timeout_s=60))
    (table,) = _tables(doc)
    assert table.page == 3
    assert table.rows[0] == ["Country", "Population (millions)", "Area (km2)", "Capital", "Official Language"]
    assert ["Belgium", "11.5", "30,689", "Brussels", "Dutch, French, German"] in table.rows


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pypdfsf_GeoTopo-komprimiert.pdf", "pypdfsf_pdflatex-4-pages.pdf",
                                  "pdfminer_zen_of_python_corrupted.pdf", "pypdfsf_pdflatex-outline.pdf"])
def test_no_tables_invented_from_prose_formulas_or_figures(samples, name):
    doc = load_document(samples / name, None, IngestSettings(pdf_timeout_s=60, ocr=False))
    assert _tables(doc) == []


# Each question names a cell's row and column; the row must come back among the first three
# chunks, inside a chunk that carries the table's header line.
QUESTIONS = [
    (NICS, "How many handgun checks in Texas?", "| Texas | 21,550 |", "| State / Territory |"),
    (NICS, "Kentucky permit checks", "| Kentucky | 264,140 |", "| State / Territory |"),
    (NICS, "long gun checks in Ohio", "| Ohio | 9,338 |", "| State / Territory |"),
    (NICS, "Private Sale Handgun in Washington", "| Washington | 10,314 |", "| State / Territory |"),
    (SENATE, "amount paid to BAIN, J MATTHEW", "| BAIN, J MATTHEW |", "| DOCUMENT NO. |"),
    (SENATE, "How much was paid for document DHAW20190045?", "| DHAW20190045 |", "| DOCUMENT NO. |"),
    (SENATE, "when was DHAW20190029 posted", "| DHAW20190029 |", "| DOCUMENT NO. |"),
    (REGISTER, "labor cost of the AOA sensor system test", "| AOA sensor system test |", "| Action | Labor cost |"),
    (REGISTER, "cost on U.S. operators for the stabilizer wiring change", "| Stabilizer wiring change |",
     "| Action | Labor cost |"),
    (REGISTER, "parts cost of the AFM revisions", "| AFM revisions |", "| Action | Labor cost |"),
]


@pytest.fixture(scope="module")
def table_index(samples, tmp_path_factory):
    settings = fake_settings(tmp_path_factory.mktemp("home"))
    embedder = FakeEmbedder()
    report = build_index([samples / NICS, samples / SENATE, samples / REGISTER], settings, embedder=embedder)
    assert report.documents == 3 and not report.failures
    return Retriever(settings, embedder=embedder)


@pytest.mark.parametrize("name,question,row,header", QUESTIONS, ids=[q[1] for q in QUESTIONS])
def test_cell_question_retrieves_its_row_with_the_header(table_index, name, question, row, header):
    top = table_index.search(question, k=3, per_doc=3)[:3]
    hits = [e.chunk for e in top if row in e.chunk.text]
    assert hits, [e.chunk.text[:120] for e in top]
    assert Path(hits[0].source).name == name
    lines = hits[0].text.splitlines()
    at = next(i for i, line in enumerate(lines) if row in line)
    assert any(line.startswith(header) for line in lines[:at])  # the header sits above the row


def test_a_table_with_its_own_header_on_the_next_page_is_not_a_continuation(tmp_path):
    path = tmp_path / "two-tables.pdf"
    pdf_factory.two_tables_pdf(path)
    doc = load_document(path, None, IngestSettings(pdf_timeout_s=60))
    first, second = _tables(doc)
    assert (first.page, first.rows[0], first.rows[-1]) == (1, ["Week", "Rain (mm)", "Irrigation (mm)"], ["37", "111", "-17"])
    assert second.page == 2 and second.rows[0] == ["Pest", "Threshold", "Action"]
    assert second.rows[1:] == [["Aphids", "5 per leaf", "Release lacewings"], ["Whitefly", "10 per trap", "Yellow sticky traps"]]
