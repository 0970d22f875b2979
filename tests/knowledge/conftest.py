"""Shared fixtures for the knowledge tests: ingest settings, generated PDFs, shared corpus paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.settings import IngestSettings
from tests.knowledge import pdf_factory

SHARED = Path(__file__).resolve().parents[3] / "shared"  # /work/shared next to the repo
CORPUS = SHARED / "corpus"
PDF_SAMPLES = CORPUS / "pdf_samples"


@pytest.fixture
def ingest() -> IngestSettings:
    return IngestSettings(pdf_timeout_s=60)


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def pdf_samples() -> Path:
    if not PDF_SAMPLES.is_dir():
        pytest.skip(f"sample PDFs not found at {PDF_SAMPLES}")
    return PDF_SAMPLES


@pytest.fixture(scope="session")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pdfs")


@pytest.fixture(scope="session")
def english_pdf(pdf_dir: Path) -> tuple[Path, list[str]]:
    path = pdf_dir / "english.pdf"
    return path, pdf_factory.english_pdf(path, pages=3)


@pytest.fixture(scope="session")
def chinese_pdf(pdf_dir: Path) -> tuple[Path, list[str]]:
    if pdf_factory.CJK_FONT is None:
        pytest.skip("no CJK font; apt-get install fonts-wqy-microhei")
    path = pdf_dir / "chinese.pdf"
    return path, pdf_factory.chinese_pdf(path)


@pytest.fixture(scope="session")
def scanned_pdf(pdf_dir: Path) -> Path:
    path = pdf_dir / "scanned.pdf"
    pdf_factory.scanned_pdf(path)
    return path


@pytest.fixture(scope="session")
def header_footer_pdf(pdf_dir: Path) -> Path:
    path = pdf_dir / "header_footer.pdf"
    pdf_factory.header_footer_pdf(path, pages=4)
    return path
