"""Test PDFs made at test time with fpdf2 and Pillow (no binary fixtures in the repo).

Chinese PDFs need a CJK TrueType font from Debian: ``apt-get install fonts-wqy-microhei``
(``fonts-wqy-zenhei`` or ``fonts-arphic-uming`` also work); ``CJK_FONT`` is None without one.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
LATIN_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
CJK_FONT: Path | None = next((Path(p) for p in CJK_FONT_CANDIDATES if Path(p).is_file()), None)

def _fpdf():
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(20, 20, 20)
    return pdf


EQUIPMENT = ["pump", "valve", "heater", "fan", "boiler", "sprayer", "sensor", "chiller"]


def english_pdf(path: Path, pages: int = 3) -> list[str]:
    """``pages`` pages, each about one piece of equipment; returns each page's marker sentence."""
    pdf = _fpdf()
    markers = []
    for n in range(1, pages + 1):
        item = EQUIPMENT[(n - 1) % len(EQUIPMENT)]
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, f"{item.title()} maintenance", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        marker = f"The irrigation {item} must be inspected every week."
        pdf.multi_cell(0, 6, marker + f" Check the seals, the pressure gauge and the inlet of the {item} "
                       "before the morning watering cycle starts, and write the readings into the log.")
        pdf.ln(4)
        pdf.multi_cell(0, 6, f"Spare parts for the {item} are kept in cabinet {n * 7 + 3}.")
        markers.append(marker)
    pdf.output(str(path))
    return markers


CHINESE_PARAGRAPHS = [
    "第一章 总则",
    "第一条 为了加强温室生产安全管理，防止和减少生产安全事故，保障从业人员的生命和财产安全，"
    "促进设施农业持续健康发展，根据有关法律、行政法规，制定本规定。",
    "第二条 温室内使用的灌溉水泵、卷帘机和加温设备，应当由经过培训的人员操作，并定期检查维护。",
    "第三条 农药应当存放在专用仓库，由专人保管，并建立出入库登记制度。",
]


def chinese_pdf(path: Path) -> list[str]:
    """A Chinese regulation-like PDF (needs CJK_FONT); returns its paragraphs."""
    if CJK_FONT is None:
        raise RuntimeError("no CJK font: apt-get install fonts-wqy-microhei")
    pdf = _fpdf()
    pdf.add_font("cjk", fname=str(CJK_FONT), collection_font_number=0)
    pdf.add_page()
    pdf.set_font("cjk", size=12)
    for text in CHINESE_PARAGRAPHS:
        pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.output(str(path))
    return CHINESE_PARAGRAPHS


SCAN_LINES = ["IRRIGATION PUMP", "Close the valve", "before service"]


def text_image_png(lines: list[str], size: tuple[int, int] = (1654, 2339), font_px: int = 90) -> bytes:
    """A white A4-at-200-dpi image with ``lines`` in large black letters, as PNG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font_file = next((p for p in LATIN_FONT_CANDIDATES if Path(p).is_file()), None)
    font = ImageFont.truetype(font_file, font_px) if font_file else ImageFont.load_default(size=font_px)
    y = 250
    for line in lines:
        draw.text((150, y), line, font=font, fill="black")
        y += int(font_px * 1.8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def scanned_pdf(path: Path) -> None:
    """Page 1 has a text layer; page 2 is only an image of SCAN_LINES (no text layer)."""
    pdf = _fpdf()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 7, "This first page has a real text layer about greenhouse ventilation "
                   "and the opening of roof vents on warm afternoons.")
    pdf.add_page()
    pdf.image(io.BytesIO(text_image_png(SCAN_LINES)), x=0, y=0, w=210, h=297)
    pdf.output(str(path))


HEADER = "ACME Greenhouse Pump Manual - Rev 3"
BODY_LINES = [
    "Regular inspection is part of the routine mainte-",
    "nance of every irrigation {item} in the greenhouse.",
    "Replace worn seals before the pressure drops below",
    "the level given on the Type-",
    "A nameplate of the {item}.",
]


def header_footer_pdf(path: Path, pages: int = 4) -> None:
    """Pages with a running header, a "Page n of N" footer and line-end hyphenation."""
    pdf = _fpdf()
    pdf.set_auto_page_break(auto=False)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        pdf.set_xy(20, 10)
        pdf.cell(0, 5, HEADER)
        pdf.set_font("Helvetica", size=11)
        pdf.set_xy(20, 30)
        pdf.cell(0, 6, f"Section {EQUIPMENT[n - 1].title()}", new_x="LMARGIN", new_y="NEXT")
        for line in BODY_LINES:
            pdf.cell(0, 6, line.format(item=EQUIPMENT[n - 1]), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        pdf.set_xy(20, 285)
        pdf.cell(0, 5, f"Page {n} of {pages}", align="C")
    pdf.output(str(path))


def garbage_pdf_bytes() -> bytes:
    """Starts like a PDF, is not one."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def truncated_pdf_bytes(tmp: Path) -> bytes:
    """The first half of a valid PDF: no xref, no trailer, cut inside an object."""
    english_pdf(tmp, pages=2)
    data = tmp.read_bytes()
    return data[: len(data) // 2]


def flate_bomb_pdf_bytes(decompressed_mb: int = 60) -> bytes:
    """One page whose content stream inflates to ``decompressed_mb`` MB of text operators:
    a few kB on disk; 4 MB keeps pypdf busy for seconds, 60 MB needs more than 128 MB of RAM."""
    op = b"BT /F1 12 Tf 72 712 Td (x) Tj ET\n"
    content = zlib.compress(op * (decompressed_mb * 1024 * 1024 // len(op)), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# --- tables ----------------------------------------------------------------------------------

FERTILIZER_HEADER = ["Crop", "Growth stage", "Nitrogen\n(kg/ha)", "Irrigation\ninterval (days)"]
FERTILIZER_ROWS = [
    ["Tomato", "Transplanting", "40", "3"],
    ["Tomato", "Flowering", "60", "2"],
    ["Cucumber", "Seedling", "", "4"],  # an empty cell
    ["Pepper", "Fruit set", "55", "3"],
] + [[f"Lettuce {n}", "Heading", str(20 + n), str(5 + n % 3)] for n in range(1, 40)]
DOSE_ROWS = [["Copper oxychloride", "Downy mildew", "2.0", "3.0"], ["Mancozeb", "Early blight", "1.5", "2.5"]]


def table_pdf(path: Path) -> None:
    """A ruled fertilizer table with two-line header cells and an empty cell, long enough to run
    onto page 2 without repeating its header; then a dose table whose header merges "Dose
    (g/L)" over "Min" and "Max"; prose around both, and a framed one-paragraph note."""
    pdf = _fpdf()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Fertilizer schedule. The table below gives the nitrogen rate and the irrigation "
                   "interval for each crop and growth stage in the greenhouse.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=10)
    with pdf.table(col_widths=(40, 40, 30, 40), repeat_headings=0, line_height=6) as table:
        for row in [FERTILIZER_HEADER, *FERTILIZER_ROWS]:
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Fungicide doses are given per litre of spray solution.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=10)
    with pdf.table(col_widths=(50, 40, 25, 25), line_height=6, num_heading_rows=2) as table:
        top = table.row()
        top.cell("Product", rowspan=2)
        top.cell("Disease", rowspan=2)
        top.cell("Dose (g/L)", colspan=2, align="C")
        sub = table.row()
        sub.cell("Min")
        sub.cell("Max")
        for row in DOSE_ROWS:
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    y = pdf.get_y()
    pdf.multi_cell(0, 6, "Note: wear gloves and a mask when mixing fungicides, and wash the sprayer "
                   "after use. Keep the spray log next to the chemical store.", border=1,
                   new_x="LMARGIN", new_y="NEXT")
    pdf.line(20, y - 2, 190, y - 2)  # a rule above the note: rules alone do not make a table
    pdf.output(str(path))


THREE_LINE_HEADER = ["Variety", "Yield (t/ha)", "Brix (%)", "Harvest date"]
THREE_LINE_ROWS = [["Moneymaker", "82.5", "4.6", "12 June"], ["Ailsa Craig", "76.1", "5.1", "18 June"],
                   ["San Marzano", "64.8", "5.8", "25 June"]]


def three_line_table_pdf(path: Path) -> None:
    """A booktabs table: rules above the header, below it and below the body; no vertical rules."""
    pdf = _fpdf()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Table 2: Yield and sugar content of three tomato varieties in the 2023 trial.",
                   new_x="LMARGIN", new_y="NEXT")
    xs = [20, 65, 105, 140]
    y = pdf.get_y() + 3
    pdf.set_line_width(0.4)
    pdf.line(20, y, 190, y)
    pdf.set_font("Helvetica", "B", 10)
    for x, text in zip(xs, THREE_LINE_HEADER):
        pdf.text(x, y + 5, text)
    pdf.line(20, y + 7.5, 190, y + 7.5)
    pdf.set_font("Helvetica", size=10)
    for n, row in enumerate(THREE_LINE_ROWS):
        for x, text in zip(xs, row):
            pdf.text(x, y + 13 + 6 * n, text)
    pdf.line(20, y + 15 + 6 * len(THREE_LINE_ROWS), 190, y + 15 + 6 * len(THREE_LINE_ROWS))
    pdf.set_xy(20, y + 22 + 6 * len(THREE_LINE_ROWS))
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Moneymaker gave the highest yield, San Marzano the sweetest fruit.")
    pdf.output(str(path))


LEFT_COLUMN = ["Pumps are checked", "every Monday morning", "before the first", "watering cycle starts", "and the seals are", "replaced each spring."]
RIGHT_COLUMN = ["Valves are opened", "slowly after service", "so that pressure", "builds up gently and", "no pipe bursts in", "the cold season."]


def two_column_png(size: tuple[int, int] = (1654, 2339), font_px: int = 40) -> bytes:
    """A page image with a title across the top and two text columns below it, set so that a
    reader going straight across would mix the columns' lines."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font_file = next((p for p in LATIN_FONT_CANDIDATES if Path(p).is_file()), None)
    font = ImageFont.truetype(font_file, font_px) if font_file else ImageFont.load_default(size=font_px)
    title = ImageFont.truetype(font_file, int(font_px * 1.4)) if font_file else font
    draw.text((150, 200), "GREENHOUSE SERVICE NOTES", font=title, fill="black")
    for n, (left, right) in enumerate(zip(LEFT_COLUMN, RIGHT_COLUMN)):
        y = 400 + n * int(font_px * 1.7)
        draw.text((150, y), left, font=font, fill="black")
        draw.text((900, y), right, font=font, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_pdf(path: Path, png: bytes) -> None:
    """One page that is only the given image (a scan without text layer)."""
    pdf = _fpdf()
    pdf.add_page()
    pdf.image(io.BytesIO(png), x=0, y=0, w=210, h=297)
    pdf.output(str(path))


GARBLED_LINES = ["Close the main valve", "before the pump service.", "Check the pressure gauge."]


def garbled_text_pdf(path: Path) -> None:
    """Large text whose font's ToUnicode map sends every glyph to a private-use code point: the
    page renders fine, but every text layer reader gets garbage (as with broken CID fonts)."""
    font_file = next((p for p in LATIN_FONT_CANDIDATES if Path(p).is_file()), None)
    if font_file is None:
        raise RuntimeError("no TrueType font: apt-get install fonts-dejavu-core")
    pdf = _fpdf()
    pdf.compress = False  # keep the ToUnicode stream readable so it can be rewritten below
    pdf.add_font("latin", fname=font_file)
    pdf.add_page()
    pdf.set_font("latin", size=28)
    for line in GARBLED_LINES:
        pdf.cell(0, 16, line, new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())
    start = data.index(b"beginbfchar")
    end = data.index(b"endbfchar", start)
    # "<0001> <0043>" -> "<0001> <E001>": same length, so the xref offsets stay right.
    body = re.sub(rb"<([0-9A-F]{4})> <(?!0020)([0-9A-F]{4})>", lambda m: b"<%s> <E%s>" % (m[1], m[1][1:]),
                  data[start:end])
    path.write_bytes(data[:start] + body + data[end:])


def two_tables_pdf(path: Path) -> None:
    """Page 1 ends with a numeric table reaching the page bottom; page 2 opens with another table
    of as many columns that has a header of its own (words over the numbers)."""
    pdf = _fpdf()
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    with pdf.table(col_widths=(60, 50, 50), line_height=6) as table:
        for row in [["Week", "Rain (mm)", "Irrigation (mm)"], *[[str(n), str(3 * n), str(20 - n)] for n in range(1, 38)]]:
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.add_page()
    with pdf.table(col_widths=(60, 50, 50), line_height=6) as table:
        for row in [["Pest", "Threshold", "Action"], ["Aphids", "5 per leaf", "Release lacewings"],
                    ["Whitefly", "10 per trap", "Yellow sticky traps"]]:
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.output(str(path))
