"""Dense vectors in FAISS: exact inner product up to a size, HNSW above it. Files are written
with FAISS's own format (no pickle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge.settings import IndexSettings


def build_vector_index(vectors: np.ndarray, settings: IndexSettings):
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if len(vectors) > settings.hnsw_threshold:
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, settings.hnsw_m * 2)
        index.hnsw.efSearch = settings.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def save_vector_index(index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load_vector_index(path: Path, ef_search: int | None = None):
    import faiss

    index = faiss.read_index(str(path))
    if ef_search and hasattr(index, "hnsw"):
        index.hnsw.efSearch = ef_search
    return index


def search_vectors(index, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, rows) for one unit query vector; ``allowed`` = rows that may be returned."""
    import faiss

    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    k = min(k, index.ntotal)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    params = None
    if allowed is not None:
        if len(allowed) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params = faiss.SearchParametersHNSW(sel=selector) if hasattr(index, "hnsw") else faiss.SearchParameters(sel=selector)
    scores, rows = index.search(q, k, params=params) if params is not None else index.search(q, k)
    keep = rows[0] >= 0
    return scores[0][keep], rows[0][keep]
