"""Retrieval evaluation: build a temporary index from an evaluation set through the real
pipeline, run every query, score at document level (FORMAT.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.settings import Settings
from evals.datasets import load_dataset, temporary_index
from knowledge.embedding import Embedder, make_embedder


def score_ranking(ranked_doc_ids: list[str], gold: set[str]) -> dict[str, float]:
    """recall@1/5/10 and reciprocal rank@10 for one query (distinct documents, in order)."""
    seen: list[str] = []
    for d in ranked_doc_ids:
        if d not in seen:
            seen.append(d)
    out = {f"recall@{k}": len(gold & set(seen[:k])) / len(gold) for k in (1, 5, 10)}
    out["mrr@10"] = next((1.0 / i for i, d in enumerate(seen[:10], 1) if d in gold), 0.0)
    return out


def percentile_ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def evaluate_retrieval(dataset_dir: Path, settings: Settings | None = None, embedder: Embedder | None = None,
                       k: int = 10, keep_dir: Path | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    info, docs, queries = load_dataset(dataset_dir)
    embedder = embedder or make_embedder(settings.embedding, settings.home)  # loaded once for build and queries
    with temporary_index(docs, settings, embedder, keep_dir) as built:
        retriever, mapping, report, index_seconds = built.retriever, built.mapping, built.report, built.index_seconds
        totals = {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
        latencies: list[float] = []
        per_query = []
        for q in queries:
            t = time.perf_counter()
            evidence = retriever.search(q.question, k=k)
            latencies.append((time.perf_counter() - t) * 1000)
            ranked = [mapping.get(e.chunk.source, e.chunk.source) for e in evidence]
            s = score_ranking(ranked, set(q.gold_ids))
            for key in totals:
                totals[key] += s[key]
            per_query.append({"id": q.id, "ranked": ranked[:5], "gold": q.gold_ids, **s})
    n = max(1, len(queries))
    result: dict[str, Any] = {key: round(v / n, 4) for key, v in totals.items()}
    result.update(
        dataset=info.get("name"),
        queries=len(queries),
        documents=len(docs),
        chunks=report.chunks,
        failures=len(report.failures),
        index_seconds=round(index_seconds, 2),
        latency_ms={"p50": percentile_ms(latencies, 50), "p95": percentile_ms(latencies, 95)},
        embedder=retriever.embedder.name,
    )
    result["per_query"] = per_query
    return result
