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


def test_cited_sources_come_first_and_are_marked():
    assert [s["n"] for s in ordered(SOURCES, [3, 2])] == [2, 3, 1]
    md = sources_markdown(SOURCES, [2], "en")
    assert md.index("**[2]**") < md.index("**[1]**")
    assert "Pump &gt; Seals &lt;b&gt; — _pump.pdf, p. 2_ · **cited**" in md
    assert "_live data_" in md and "&lt;script&gt;" in md and "<script>" not in md
    assert "来源" in sources_markdown([], [], "zh")


def test_choices_and_detail():
    choices = source_choices(SOURCES, [2], "en")
    assert choices[0] == ("[2] Pump > Seals <b> (pump.pdf p. 2)", 2)  # radio labels are plain text
    assert ("[3] sensor_latest(target=gh2) (live data)", 3) in choices
    detail = source_detail(find(SOURCES, "2"), "en")
    assert detail.startswith("#### [2] Pump &gt; Seals &lt;b&gt;")
    assert "instruction-like" in detail and "> Check the seals weekly." in detail and "&lt;script&gt;" in detail
    assert find(SOURCES, None) is None and find(SOURCES, "x") is None and find(SOURCES, 9) is None
    assert source_detail(None, "en") == ""


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
