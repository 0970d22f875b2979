"""Answer evaluation: retrieval plus the configured model over the questions that carry a
reference answer. Token recall: the share of the reference answer's tokens (SQuAD
normalisation: lower case, no punctuation or articles; Chinese by character) that appear in
the produced answer, counted with multiplicity. Citation hit: the answer cites at least one
gold document."""

from __future__ import annotations

import re
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from assistant.settings import Settings
from evals.datasets import load_dataset, temporary_index
from evals.retrieval import percentile_ms
from knowledge.embedding import Embedder, make_embedder
from knowledge.text import HAN
from knowledge.types import Evidence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_LABEL_LINE = re.compile(r"^.*\n", re.S)

# An answerer takes (question, evidence) and returns (answer text, cited evidence).
Answerer = Callable[[str, list[Evidence]], tuple[str, list[Evidence]]]


def answer_tokens(text: str) -> list[str]:
    text = text.lower()
    han = HAN.findall(text)
    text = HAN.sub(" ", text)
    text = "".join(ch if ch not in string.punctuation else " " for ch in text)
    return _ARTICLES.sub(" ", text).split() + han


def token_recall(reference: str, answer: str) -> float:
    ref = Counter(answer_tokens(reference))
    if not ref:
        return 0.0
    got = Counter(answer_tokens(answer))
    return sum(min(n, got[t]) for t, n in ref.items()) / sum(ref.values())


def extractive_answerer(embedder: Embedder, reason: str = "evaluation of extractive mode") -> Answerer:
    from assistant.llm.extractive import ExtractiveModel

    model = ExtractiveModel(embedder, reason=reason)

    def answer(question: str, evidence: list[Evidence]) -> tuple[str, list[Evidence]]:
        extract = model.answer(question, evidence)
        body = _LABEL_LINE.sub("", extract.text, count=1)  # score the extract, not the label
        return body, extract.citations

    return answer


def evaluate_answers(dataset_dir: Path, settings: Settings | None = None, embedder: Embedder | None = None,
                     answerer: Answerer | None = None, mode: str = "extractive", k: int = 5) -> dict[str, Any]:
    settings = settings or Settings()
    info, docs, queries = load_dataset(dataset_dir)
    queries = [q for q in queries if q.answer]
    embedder = embedder or make_embedder(settings.embedding, settings.home)
    answerer = answerer or extractive_answerer(embedder)
    recall_sum = hits = 0.0
    latencies: list[float] = []
    with temporary_index(docs, settings, embedder) as built:
        retriever, mapping = built.retriever, built.mapping
        for q in queries:
            t = time.perf_counter()
            evidence = retriever.search(q.question, k=k)
            text, cited = answerer(q.question, evidence)
            latencies.append((time.perf_counter() - t) * 1000)
            recall_sum += token_recall(q.answer or "", text)
            hits += any(mapping.get(e.chunk.source) in q.gold_ids for e in cited)
    n = max(1, len(queries))
    return {
        "dataset": info.get("name"),
        "mode": mode,
        "questions": len(queries),
        "answer_token_recall": round(recall_sum / n, 4),
        "citation_hit_rate": round(hits / n, 4),
        "latency_ms": {"p50": percentile_ms(latencies, 50), "p95": percentile_ms(latencies, 95)},
    }
