"""Index speed: ingestion throughput, incremental rebuild after one edit, query latency at scale.

Corpora are generated (sentences drawn from the bundled sample knowledge, so the vocabulary
and the Chinese/English mix are realistic); the pipeline measured is the real one.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from assistant.settings import Settings
from evals.retrieval import percentile_ms
from knowledge.builder import build_index
from knowledge.embedding import FakeEmbedder, make_embedder
from knowledge.retrieval import Retriever
from knowledge.text import split_sentences


def _sentences(samples_dir: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(samples_dir.rglob("*.md")):
        text = re.sub(r"^---.*?---", "", path.read_text(encoding="utf-8"), flags=re.S)
        out.extend(s for s in split_sentences(re.sub(r"[#|*`]", " ", text)) if len(s) > 12)
    return out or ["Grease the bearings every 2000 hours.", "夜间温度不低于15 °C。"]


def _write_markdown_corpus(folder: Path, documents: int, sections: int, rng: random.Random, pool: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(documents):
        parts = [f"# Document {i}"]
        for j in range(sections):
            parts.append(f"## Section {j} of unit U-{i}-{j}")
            parts.append(" ".join(rng.sample(pool, min(4, len(pool)))))
        (folder / f"doc{i:05d}.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def _write_pdfs(folder: Path, count: int, pages: int, rng: random.Random, pool: list[str]) -> int:
    from fpdf import FPDF

    english = [s for s in pool if s.isascii()] or ["Check the seal every week."]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pdf = FPDF()
        pdf.set_font("helvetica", size=11)
        for _ in range(pages):
            pdf.add_page()
            pdf.multi_cell(0, 6, "\n\n".join(rng.sample(english, min(12, len(english)))))
        pdf.output(str(folder / f"manual{i:03d}.pdf"))
    return count * pages


def _full_build(docs: Path, settings: Settings, embedder) -> dict[str, Any]:
    t = time.perf_counter()
    rep = build_index([docs], settings, embedder=embedder)
    sec = time.perf_counter() - t
    return {"embedder": embedder.name, "documents": rep.documents, "chunks": rep.chunks, "seconds": round(sec, 2),
            "chunks_per_s": round(rep.chunks / sec, 1), "docs_per_s": round(rep.documents / sec, 1)}


def run_index_bench(documents: int = 300, chunks: int = 100_000, pdfs: int = 20, pdf_pages: int = 5,
                    queries: int = 200, progress: Callable[[str], None] = print,
                    baseline_embedder: str | None = None) -> dict[str, Any]:
    """``baseline_embedder``: also build the Markdown corpus with this embedder, right after the
    configured one on the same machine, and report the throughput ratio (timings on shared cores
    are only comparable within one run)."""
    base = Settings()
    pool = _sentences(base.samples_dir)
    rng = random.Random(7)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="onsite-bench-") as tmp:
        tmp_path = Path(tmp)
        embedder = make_embedder(base.embedding, base.home)

        progress(f"PDF ingestion: {pdfs} PDFs x {pdf_pages} pages …")
        pages = _write_pdfs(tmp_path / "pdfs", pdfs, pdf_pages, rng, pool)
        s = base.model_copy(update={"home": tmp_path / "home-pdf"})
        t = time.perf_counter()
        rep = build_index([tmp_path / "pdfs"], s, embedder=embedder)
        sec = time.perf_counter() - t
        result["pdf"] = {"pages": pages, "seconds": round(sec, 2), "pages_per_s": round(pages / sec, 2),
                         "failures": len(rep.failures)}

        progress(f"Markdown corpus: {documents} documents, full then incremental build …")
        _write_markdown_corpus(tmp_path / "docs", documents, 10, rng, pool)
        s = base.model_copy(update={"home": tmp_path / "home-md"})
        result["full_build"] = _full_build(tmp_path / "docs", s, embedder)
        if baseline_embedder:
            progress(f"… and the same corpus with {baseline_embedder} …")
            other = make_embedder(base.embedding.model_copy(update={"model": baseline_embedder, "languages": None}))
            result["baseline_full_build"] = _full_build(
                tmp_path / "docs", base.model_copy(update={"home": tmp_path / "home-baseline"}), other)
            result["chunks_per_s_ratio"] = round(
                result["full_build"]["chunks_per_s"] / result["baseline_full_build"]["chunks_per_s"], 3)
        edited = tmp_path / "docs" / "doc00000.md"
        edited.write_text(edited.read_text(encoding="utf-8") + "\nAn added line about valve V-99.\n", encoding="utf-8")
        t = time.perf_counter()
        rep = build_index([tmp_path / "docs"], s, embedder=embedder)
        result["incremental_rebuild"] = {"changed_files": len(rep.parsed), "embedded": rep.embedded,
                                         "seconds": round(time.perf_counter() - t, 2)}

        progress(f"Query latency at {chunks} chunks (vectors from a hashing embedder of the same width) …")
        per_doc = 100
        _write_markdown_corpus(tmp_path / "big", max(1, chunks // per_doc), per_doc, rng, pool)
        s = base.model_copy(update={"home": tmp_path / "home-big"})
        # Named like the real embedder (in this throw-away home only): the retriever searches
        # vectors only when the index was built by the model that embeds the query.
        fake = FakeEmbedder(dim=embedder.dim, languages=embedder.languages)
        fake.name = embedder.name
        t = time.perf_counter()
        rep = build_index([tmp_path / "big"], s, embedder=fake)
        result["large_index"] = {"chunks": rep.chunks, "build_seconds": round(time.perf_counter() - t, 1)}
        # Queries go through the real embedder: its time is part of the latency.
        retriever = Retriever(s, embedder=embedder)
        retriever.search("warm up", k=5)
        qs = [rng.choice(pool)[:60] for _ in range(queries)]
        lat = []
        for q in qs:
            t = time.perf_counter()
            retriever.search(q, k=5)
            lat.append((time.perf_counter() - t) * 1000)
        result["large_index"]["latency_ms"] = {"p50": percentile_ms(lat, 50), "p95": percentile_ms(lat, 95)}
        result["large_index"]["vector_index"] = type(retriever.index.version().vectors).__name__
    return result
