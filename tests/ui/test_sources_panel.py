"""The sources panel: listing, picking, the full passage, and page images of indexed PDFs only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.sources_panel import (KnownSources, PageImages, find, ordered, render_page_png, source_choices, source_detail,
                        sources_markdown)

SOURCES = [
    {"n": 1, "kind": "document", "title": "Safety > Rule 3", "text": "Never work alone.", "source": "/d/rules.md"},
    {"n": 2, "kind": "document", "title": "Pump > Seals <b>", "text": "Check the seals weekly.\n\n<script>x</script>",
     "source": "/d/pump.pdf", "page": 2, "flags": ["instruction_like"]},
    {"n": 3, "kind": "tool", "title": "sensor_latest(target=gh2)", "text": "gh2 24.1 °C"},
]


def _pdf(path: Path, pages: int = 2) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    for i in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=20)
        pdf.cell(0, 10, f"Page {i + 1}")
    pdf.output(str(path))
    return path


class _Version:
    def __init__(self, name: str, files: list[str]):
        self.name = name
        self.store = self
        self._files = files

    def documents(self):
        return [type("Doc", (), {"source": f})() for f in self._files]


class _Service:
    """What KnownSources reads (KnowledgeAdmin's live version and its files)."""

    def __init__(self, files: list[str] | None):
        self.files = files

    def live_version(self) -> str | None:
        if self.files is None:
            raise RuntimeError("no index")
        return f"v{len(self.files)}"

    def indexed_files(self) -> set[str]:
        return set(self.files or [])


def test_sources_are_listed_in_number_order_and_the_cited_ones_marked():
    """The radio list read [1],[2],[6],[3],[4],[5] (cited first): numbers in order, cited marked."""
    shuffled = [SOURCES[2], SOURCES[0], SOURCES[1]]
    assert [s["n"] for s in ordered(shuffled, [3, 2])] == [1, 2, 3]
    md = sources_markdown(shuffled, [3], "en")
    assert md.index("**[1]**") < md.index("**[2]**") < md.index("**[3]**")
    assert "Pump &gt; Seals &lt;b&gt; — _pump.pdf, p. 2_\n" in md and "_live data_ · **cited**" in md
    assert "_live data_" in md and "&lt;script&gt;" in md and "<script>" not in md
    assert "来源" in sources_markdown([], [], "zh")
    six = [{"n": n, "kind": "document", "title": f"T{n}", "text": "x", "source": "/d/a.md"} for n in (1, 2, 6, 3, 4, 5)]
    assert [n for _, n in source_choices(six, [1, 2, 6], "en")] == [1, 2, 3, 4, 5, 6]


def test_choices_and_detail():
    choices = source_choices(SOURCES, [2], "en")
    assert choices[1] == ("[2] Pump > Seals <b> (pump.pdf p. 2) · cited", 2)  # radio labels are plain text
    assert ("[3] sensor_latest(target=gh2) (live data)", 3) in choices and choices[0][1] == 1
    assert source_choices(SOURCES, [2], "zh")[1][0].endswith("· 已引用")
    detail = source_detail(find(SOURCES, "2"), "en")
    assert detail.startswith("#### [2] Pump &gt; Seals &lt;b&gt;")
    assert "instruction-like" in detail and "> Check the seals weekly." in detail and "&lt;script&gt;" in detail
    assert find(SOURCES, None) is None and find(SOURCES, "x") is None and find(SOURCES, 9) is None
    assert source_detail(None, "en") == ""


TABLE_CHUNK = {"n": 4, "kind": "document", "title": "Pump > 3.1 Limits", "source": "/d/pump.md",
               "text": "| Parameter | Tag | Normal range | Alarm |\n| Flow | FT-101 | 40–55 m³/h | below 20 |\n"
                       "| Vibration | VT-101 | up to 2.8 mm/s | 4.5 mm/s |\nA bearing up to 70 °C is normal."}


def test_a_table_chunk_is_shown_as_a_table_not_as_bar_soup():
    """Chunks keep table rows without the header separator; shown flattened they read
    "| Tag | Function | | LT-101 | …". The panel shows them as a Markdown table (header row,
    separator row), and the sentence after the table as a quote."""
    detail = source_detail(TABLE_CHUNK, "en")
    assert ("| Parameter | Tag | Normal range | Alarm |\n|---|---|---|---|\n| Flow | FT-101 | 40–55 m³/h | below 20 |\n"
            "| Vibration | VT-101 | up to 2.8 mm/s | 4.5 mm/s |\n\n> A bearing up to 70 °C is normal.") in detail
    listing = sources_markdown([TABLE_CHUNK], [], "en")
    assert "| Parameter | Tag | Normal range | Alarm |\n|---|---|---|---|\n| Flow |" in listing
    assert "| | " not in listing  # rows are not run together on one line
    # a long table is cut after a few rows in the list (the whole of it is in the detail)
    long = {**TABLE_CHUNK, "text": "\n".join(["| A | B |"] + [f"| row {i} | value {i} with some words |" for i in range(40)])}
    preview = sources_markdown([long], [], "en")
    assert "|---|---|" in preview and "row 3 |" in preview and "row 39" not in preview and preview.endswith("…")
    assert "row 39" in source_detail(long, "en")


def test_a_live_data_source_is_shown_in_the_pages_language():
    tool = {"n": 6, "kind": "tool", "title": "sensor_latest(target=GH-2-TEMP)",
            "text": "GH-2-TEMP: the reading is within limits (taken just now) — GH-2-TEMP 21.2 °C (normal 20–24, day)"}
    assert "读数在正常范围内（刚刚读取）" in sources_markdown([tool], [6], "zh")
    assert "（正常 20–24，白天）" in source_detail(tool, "zh")
    assert tool["text"] in source_detail(tool, "en")


def test_page_images_only_for_pdfs_the_index_knows(tmp_path):
    indexed = _pdf(tmp_path / "manual.pdf")
    other = _pdf(tmp_path / "not-indexed.pdf")
    pages = PageImages(KnownSources(_Service([str(indexed), str(tmp_path / "notes.md")])))
    src = {"n": 1, "kind": "document", "source": str(indexed), "page": 2}
    png = pages.png(src)
    assert png is not None and png.startswith(b"\x89PNG")
    assert pages.png(src) is png  # cached
    assert pages.image(src).size[0] > 100
    assert pages.png({**src, "source": str(other)}) is None  # a PDF outside the index is never rendered
    assert pages.png({**src, "source": "/etc/passwd"}) is None
    assert pages.png({**src, "source": str(tmp_path / "notes.md")}) is None  # not a PDF
    assert pages.png({**src, "page": None}) is None
    assert pages.png({**src, "page": 7}) is None  # no such page
    assert pages.png({**src, "kind": "tool"}) is None
    assert pages.png(None) is None and pages.image(None) is None


def test_no_index_means_no_page_images(tmp_path):
    pdf = _pdf(tmp_path / "a.pdf")
    assert PageImages(KnownSources(_Service(None))).png({"kind": "document", "source": str(pdf), "page": 1}) is None


@pytest.mark.parametrize("content", [b"%PDF-1.4\n" + b"garbage" * 50, b"not a pdf at all"])
def test_broken_files_render_to_nothing(tmp_path, content):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(content)
    assert render_page_png(str(bad), 1) is None


def test_the_renderer_child_is_killed_on_a_timeout(tmp_path):
    pdf = _pdf(tmp_path / "a.pdf", pages=1)
    assert render_page_png(str(pdf), 1, timeout_s=0.001) is None
