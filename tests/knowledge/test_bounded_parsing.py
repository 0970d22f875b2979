"""Issue 13 item 4: documents are parsed in a limited child process, never in the server; zip
bombs are refused from the zip directory; a bad file in a batch is reported and skipped.

The attack files are made here at test time (streamed, so making them costs this process
nothing): a DOCX whose document.xml inflates to hundreds of MB, one whose single text node
does, and files that need more time or memory than the parser is given."""

from __future__ import annotations

import gc
import io
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from knowledge.builder import build_index
from knowledge.documents import check_document_bytes
from knowledge.errors import DocumentRejectedError, IngestError
from knowledge.loaders import load_document
from knowledge.settings import IngestSettings

from .conftest_index import PUMP, fake_settings

_DOCX_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
              '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
_DOCX_TAIL = "</w:body></w:document>"
_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
    'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '</Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
}


def _docx(path: Path, body_chunks) -> Path:
    """A DOCX whose document.xml is streamed from ``body_chunks`` (never whole in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        with archive.open("word/document.xml", "w", force_zip64=True) as fh:
            fh.write(_DOCX_HEAD.encode())
            for chunk in body_chunks:
                fh.write(chunk)
            fh.write(_DOCX_TAIL.encode())
    return path


def _paragraphs(mb: int):
    para = b"<w:p><w:r><w:t>Replace the seal only after lockout and tagout.</w:t></w:r></w:p>"
    block = para * (1024 * 1024 // len(para))
    for _ in range(mb):
        yield block


def _one_text_node(mb: int):
    yield b"<w:p><w:r><w:t>"
    block = b"A" * (1024 * 1024)
    for _ in range(mb):
        yield block
    yield b"</w:t></w:r></w:p>"


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def _good_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Seal replacement", level=1)
    document.add_paragraph("Lock out and tag out P-101 before opening the seal housing.")
    document.save(str(path))
    return path


@pytest.mark.parametrize("body, expected", [
    (lambda: _paragraphs(200), r"expands to 2\d\d\.\d MB \(limit 64 MB unzipped\); refused"),
    (lambda: _one_text_node(60), r"document\.xml expands [\d,]+× to 60\.0 MB \(limit 100×\); refused"),
], ids=["many-paragraphs", "single-text-node"])
def test_docx_zip_bomb_refused_quickly_without_server_memory(tmp_path, body, expected):
    bomb = _docx(tmp_path / "bulletin.docx", body())
    assert bomb.stat().st_size < 1_000_000  # a small file (~700 KB, ~60 KB) …
    before = _rss_mb()
    started = time.monotonic()
    with pytest.raises(IngestError, match=expected):
        load_document(bomb, tmp_path, IngestSettings())
    assert time.monotonic() - started < 10
    assert _rss_mb() - before < 30  # … that never inflates here
    # The upload is refused too, before it is stored, from the zip directory alone.
    with pytest.raises(DocumentRejectedError, match=expected):
        check_document_bytes("bulletin.docx", bomb.read_bytes(), 200 * 2**20)


def test_docx_with_more_parts_than_the_limit_refused_at_upload():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("word/document.xml", _DOCX_HEAD + _DOCX_TAIL)
        for i in range(5001):
            archive.writestr(f"word/media/p{i}.bin", b"")
    with pytest.raises(DocumentRejectedError, match="lists 5,002 parts"):
        check_document_bytes("parts.docx", buf.getvalue(), 200 * 2**20)


def test_batch_with_a_bomb_loads_the_good_files(tmp_path):
    docs = tmp_path / "docs" / "manuals"
    docs.mkdir(parents=True)
    (docs / "pump.md").write_text(PUMP, encoding="utf-8")
    _good_docx(docs / "seal.docx")
    _docx(docs / "bulletin.docx", _one_text_node(60))
    settings = fake_settings(tmp_path / "home")
    report = build_index([tmp_path / "docs"], settings)
    assert report.documents == 2, report.failures
    [(failed, reason)] = report.failures.items()
    assert failed.endswith("bulletin.docx") and "refused as a possible zip bomb" in reason


def test_parser_timeout_is_a_clear_error_and_the_next_file_loads(tmp_path):
    slow = tmp_path / "long.md"
    slow.write_text(("Paragraph about the pump and its seal. " * 40 + "\n\n") * 20_000, encoding="utf-8")
    with pytest.raises(IngestError, match=r"parsing timed out after 0\.2 s; the file was skipped"):
        load_document(slow, tmp_path, IngestSettings(parse_timeout_s=0.2))
    good = tmp_path / "pump.md"
    good.write_text(PUMP, encoding="utf-8")
    assert load_document(good, tmp_path, IngestSettings()).meta.title == "Pump P-101 manual"


def test_parser_memory_limit_is_a_clear_error(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "w", encoding="utf-8") as fh:
        for _ in range(150):
            fh.write(("第五条 设备检修前，作业人员应当切断全部能源。" * 50 + "\n\n") * 300)
    before = _rss_mb()
    with pytest.raises(IngestError, match=r"parsing exceeded the memory limit \(256 MB\); the file was skipped"):
        load_document(big, tmp_path, IngestSettings(parse_memory_mb=256))
    assert _rss_mb() - before < 30


def test_every_format_is_parsed_in_the_child(tmp_path):
    """The server process never imports the parsers: they live in the child."""
    import subprocess
    import sys

    _good_docx(tmp_path / "seal.docx")
    (tmp_path / "page.html").write_text("<h1>Valve</h1><p>Close V-3 first.</p>", encoding="utf-8")
    code = ("import sys; from pathlib import Path; from knowledge.loaders import load_document\n"
            f"root = Path({str(tmp_path)!r})\n"
            "docs = [load_document(root / n, root) for n in ('seal.docx', 'page.html')]\n"
            "print([d.meta.title for d in docs], 'docx' in sys.modules, 'bs4' in sys.modules, 'lxml' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split("\n")[0] == "['Seal replacement', 'Valve'] False False False"


def test_more_callers_than_parsers_wait_their_turn(tmp_path):
    """The builder loads with 4 threads; the 2 parser processes serve them all in turn."""
    from concurrent.futures import ThreadPoolExecutor

    paths = []
    for i in range(10):
        paths.append(tmp_path / f"note{i}.md")
        paths[-1].write_text(f"# Note {i}\n\nCheck valve V-{i} monthly.\n", encoding="utf-8")
    with ThreadPoolExecutor(max_workers=5) as pool:
        titles = list(pool.map(lambda p: load_document(p, tmp_path).meta.title, paths))
    assert titles == [f"Note {i}" for i in range(10)]


def test_docx_with_a_huge_zip_directory_refused_at_upload():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("word/document.xml", _DOCX_HEAD + _DOCX_TAIL)
        for i in range(1000):  # few parts, but each directory entry names a 2 KB path
            archive.writestr(f"word/{i:04d}" + "x" * 2100, b"")
    with pytest.raises(DocumentRejectedError, match=r"zip directory is 2\.\d MB \(limit 2\.0 MB\); refused"):
        check_document_bytes("dir.docx", buf.getvalue(), 200 * 2**20)
