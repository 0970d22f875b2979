"""Hybrid retrieval: multi-view BM25 plus dense vectors, fused with weights that depend on
the query's language and on what the embedder is good at.

Why not reciprocal-rank fusion: RRF gives a weak retriever the same say as a strong one.
With an English-only embedder on a Chinese query the dense ranking is noise, and RRF halves
BM25's recall. Here the dense retriever only votes in languages the embedder is trusted for,
and votes with its raw cosine, so a weak dense match cannot outvote a clear lexical win.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from knowledge.settings import KnowledgeConfig
from knowledge.embedding import Embedder, embedded_by_other, make_embedder, relative_similarity
from knowledge.index import IndexVersion, KnowledgeIndex
from knowledge.text import detect_lang
from knowledge.types import Evidence
from knowledge.vectors import search_vectors

log = logging.getLogger(__name__)


class Reranker(Protocol):
    def rerank(self, query: str, evidence: list[Evidence]) -> list[Evidence]:
        """Return the same evidence re-ordered, with ``rerank`` scores set."""


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder from a local folder (optional stage)."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self._model = None

    def rerank(self, query: str, evidence: list[Evidence]) -> list[Evidence]:
        if not evidence:
            return evidence
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(self.model_path, device="cpu")
        scores = self._model.predict([(query, e.chunk.title + "\n" + e.chunk.text) for e in evidence])
        for e, s in zip(evidence, scores):
            e.rerank = float(s)
        return sorted(evidence, key=lambda e: -(e.rerank or 0.0))


class Retriever:
    def __init__(self, settings: KnowledgeConfig, index: KnowledgeIndex | None = None,
                 embedder: Embedder | None = None, reranker: Reranker | None = None):
        self.settings = settings
        self.index = index or KnowledgeIndex(settings)
        self._embedder = embedder
        self._warned_version: str | None = None
        self.reranker = reranker or (CrossEncoderReranker(settings.retrieval.reranker) if settings.retrieval.reranker else None)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings.embedding, self.settings.home)
        return self._embedder

    def built_with_other_embedder(self, version: IndexVersion) -> str | None:
        """``embedded_by_other`` for the loaded embedder, warning once per version."""
        built = embedded_by_other(version.manifest, self.embedder)
        if built is None:
            return None
        if self._warned_version != version.name:
            self._warned_version = version.name
            log.warning("index %s was embedded with %s, not %s: keyword search only until it is rebuilt "
                        "(`onsite index build`; the server rebuilds it at start)", version.name, built, self.embedder.name)
        return built

    def dense_weight(self, lang: str, version: IndexVersion) -> float:
        langs = version.manifest.get("embedder", {}).get("languages") or sorted(self.embedder.languages)
        if lang not in langs or self.built_with_other_embedder(version):
            return 0.0  # lexical only until a rebuild re-embeds (the server starts one itself)
        r = self.settings.retrieval
        return r.dense_weight_zh if lang == "zh" and r.dense_weight_zh is not None else r.dense_weight

    def search(self, query: str, k: int | None = None, filters: dict[str, Any] | None = None,
               lang: str | None = None, per_doc: int | None = None) -> list[Evidence]:
        """The best chunk of each of the ``k`` best documents, best first — or up to ``per_doc``
        chunks of each (a long manual often answers in two places: limits table and procedure)."""
        k = k or self.settings.retrieval.top_k
        per_doc = per_doc or self.settings.retrieval.per_doc
        version = self.index.version()
        if version.size == 0 or not query.strip():
            return []
        lang = lang or detect_lang(query)
        mask = version.mask(filters)
        lexical = version.lexical.scores(query, lang, mask)

        w = self.dense_weight(lang, version)
        dense_rows = np.zeros(0, dtype=np.int64)
        dense_raw = np.zeros(0, dtype=np.float32)
        fused = (1.0 - w) * lexical
        if w > 0:
            qvec = self.embedder.embed_queries([query])[0]
            allowed = np.flatnonzero(mask) if mask is not None else None
            dense_raw, dense_rows = search_vectors(version.vectors, qvec, self.settings.retrieval.candidates, allowed)
            # Relative to the model's floor, not min-max scaled: measured on emanual_s10 and agxqa,
            # min-max loses up to 0.1 recall@1 as the weight grows; this is stable over 0.3-0.6.
            fused[dense_rows] += w * relative_similarity(dense_raw, self.embedder.cosine_floor)
        if mask is not None:
            fused[~mask] = -1.0

        rows = _best_rows_per_doc(fused, version.doc_ids, k * (4 if self.reranker else 1), per_doc)
        rows = [r for r in rows if fused[r] > 0]
        dense_of = dict(zip(dense_rows.tolist(), dense_raw.tolist()))
        chunks = version.store.chunks(rows)
        evidence = [
            Evidence(chunk=c, bm25=float(lexical[r]), dense=dense_of.get(r), fused=float(fused[r]))
            for c, r in zip(chunks, rows)
        ]
        if self.reranker is not None:
            evidence = self.reranker.rerank(query, evidence)
        evidence = _limit_documents(evidence, k)
        for i, e in enumerate(evidence, 1):
            e.rank = i
        return evidence


def _best_rows_per_doc(scores: np.ndarray, doc_ids: np.ndarray, k: int, per_doc: int = 1) -> list[int]:
    """Rows of the k best documents (a document scores as its best chunk), up to ``per_doc``
    rows of each, in score order."""
    # Look at a generous head of the ranking first; fall back to everything if too few docs.
    for head in (max(50, k * per_doc * 20), len(scores)):
        head = min(head, len(scores))
        top = np.argpartition(-scores, head - 1)[:head] if head < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        taken: dict[int, int] = {}
        rows: list[int] = []
        for r in top:
            d = int(doc_ids[r])
            if taken.get(d, 0) >= per_doc or (d not in taken and len(taken) == k):
                continue
            taken[d] = taken.get(d, 0) + 1
            rows.append(int(r))
            if len(taken) == k and all(n == per_doc for n in taken.values()):
                return rows
        if head == len(scores):
            return rows
    return rows


def _limit_documents(evidence: list[Evidence], k: int) -> list[Evidence]:
    """Keep the evidence of the first k distinct documents (after a reranker re-ordered them)."""
    docs: list[str] = []
    out = []
    for e in evidence:
        if e.chunk.doc_id not in docs:
            if len(docs) == k:
                continue
            docs.append(e.chunk.doc_id)
        out.append(e)
    return out
