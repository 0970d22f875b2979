"""Shared vocabulary of the knowledge base: what loaders produce, what the index stores,
what retrieval returns. Plain dataclasses, JSON-friendly, no behaviour beyond small helpers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DocKind = Literal["regulation", "manual", "crop", "other"]
DOC_KINDS: tuple[str, ...] = ("regulation", "manual", "crop", "other")

BlockKind = Literal["heading", "paragraph", "list_item", "table"]


@dataclass
class Block:
    """One structural piece of a loaded document, in reading order.

    heading: ``level`` 1..6 gives its depth; paragraph / list_item: running text;
    table: ``rows`` holds the cells, first row is the header when ``header`` is true.
    """

    kind: BlockKind
    text: str = ""
    level: int = 0
    page: int | None = None  # 1-based page for paginated sources
    rows: list[list[str]] = field(default_factory=list)
    header: bool = True


@dataclass
class DocumentMeta:
    """What we know about a document besides its text."""

    kind: str = "other"  # one of DOC_KINDS
    title: str = ""
    lang: str = ""  # "zh" or "en"; detected when empty
    asset: str | None = None
    crop: str | None = None
    effective_date: str | None = None  # ISO date string
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedDocument:
    """A parsed file: its blocks in reading order plus metadata and load warnings."""

    source: str  # path as given to the build (relative to the source root when possible)
    meta: DocumentMeta
    blocks: list[Block]
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = []
        for b in self.blocks:
            if b.kind == "table":
                parts.extend(" | ".join(r) for r in b.rows)
            else:
                parts.append(b.text)
        return "\n".join(p for p in parts if p)


@dataclass
class Chunk:
    """The unit of retrieval. ``id`` is stable for the same document text and chunker."""

    id: str
    doc_id: str
    text: str
    title_path: list[str]
    source: str
    lang: str
    page: int | None = None
    ordinal: int = 0  # position within its document
    metadata: dict[str, Any] = field(default_factory=dict)  # kind, asset, crop, effective_date, flags

    @property
    def title(self) -> str:
        return " > ".join(self.title_path)

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", "other"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """A retrieved chunk with the scores that put it there (missing retriever → None)."""

    chunk: Chunk
    bm25: float | None = None
    dense: float | None = None
    fused: float = 0.0
    rerank: float | None = None
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = self.chunk.to_dict()
        d.update(
            title=self.chunk.title,
            scores={"bm25": self.bm25, "dense": self.dense, "fused": self.fused, "rerank": self.rerank},
            rank=self.rank,
        )
        return d
