"""Answer evaluation: retrieval plus the configured model over the questions that carry a
reference answer. Token recall: the share of the reference answer's tokens (SQuAD
normalisation: lower case, no punctuation or articles; Chinese by character) that appear in
the produced answer, counted with multiplicity. Citation hit: the answer cites at least one
gold document.

With ``unanswerable=True`` every question is also asked a second time with its own gold
documents excluded from its search (``{"!source": [...]}``), which makes it a question the
knowledge cannot answer; the assistant should abstain there and not on the first run. Caveat
of this protocol: corpus statistics still include the excluded documents (a word only they
contain is not out of vocabulary), which flatters signals built on them — see
``assistant/answerability.py`` for why its score does not use the normalised BM25 score.
"""

from __future__ import annotations

import random
import re
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from assistant.settings import Settings
from evals.datasets import EvalDoc, EvalQuery, load_dataset, temporary_index
from evals.retrieval import percentile_ms
from knowledge.embedding import Embedder, make_embedder
from knowledge.text import HAN, word_tokens
from knowledge.types import Evidence

if TYPE_CHECKING:
    from knowledge.retrieval import Retriever

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_LABEL_LINE = re.compile(r"^.*\n", re.S)
CURVE_THRESHOLDS = [round(t, 2) for t in np.arange(0.0, 1.001, 0.02)]  # assess() scores lie in [0, 1]
NEAR_COPY_JACCARD = 0.5  # word-set overlap at which another document is a near copy of a gold one

# An answerer takes (question, evidence) and returns (answer text, cited evidence).
Answerer = Callable[[str, list[Evidence]], tuple[str, list[Evidence]]]


@dataclass
class Outcome:
    """One question asked end to end."""

    text: str  # the answer as scored (extractive mode: the extract without its label line)
    cited: list[Evidence]
    abstained: bool
    score: float | None = None  # answerability score, higher = more answerable (for the curve)
    evidence: list[Evidence] = field(default_factory=list)  # what was retrieved
    source: str = "extract"  # "model" (passed the checks), "fallback" (the model failed; extract), "extract"
    attempts: int = 1  # model drafts written (2 = passed after one regeneration)
    ttft_ms: float | None = None  # from the question to the first streamed answer token
    cited_texts: list[str] = field(default_factory=list)  # the passages the answer cites


# An asker answers one question under retrieval filters (None or e.g. {"!source": [...]}).
Asker = Callable[[str, "dict[str, Any] | None"], Outcome]
# Makes the asker once the evaluation index is built (the agent plugs in here).
AskerFactory = Callable[["Retriever", Embedder], Asker]


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


def extractive_asker(answerer: Answerer | None = None, k: int = 5) -> AskerFactory:
    """Search (up to two chunks per document, what ``assess`` is calibrated on), judge the
    evidence, answer from the best chunk of each document (= a per_doc=1 search, so answer
    figures stay comparable with earlier runs). The extract is produced even when abstaining,
    so answer metrics measure the extract and abstention is reported on its own."""
    from assistant.answerability import assess, index_term_weights

    def make(retriever: "Retriever", embedder: Embedder) -> Asker:
        answer = answerer or extractive_answerer(embedder)
        weights = index_term_weights(retriever.index.version())  # the evaluation index does not change

        def ask(question: str, filters: dict[str, Any] | None) -> Outcome:
            evidence = retriever.search(question, k=k, filters=filters, per_doc=2)
            verdict = assess(question, evidence, embedder, term_weights=weights)
            text, cited = answer(question, _best_chunk_per_doc(evidence))
            return Outcome(text, cited, not verdict.answerable, verdict.score, evidence,
                           cited_texts=[e.chunk.text for e in cited])

        return ask

    return make


def agent_asker(settings: Settings, loaded: Any = None) -> AskerFactory:
    """Every question through the agent itself (the turn service → the LangGraph graph):
    routing, retrieval with the filters, answerability, answer, checks. ``loaded`` is the model
    to answer with (None: extractive mode). An abstention is an answer with nothing to score."""
    import tempfile

    def make(retriever: "Retriever", embedder: Embedder) -> Asker:
        from assistant.llm import LoadedModel
        from assistant.llm.extractive import ExtractiveModel
        from assistant.errors import OnsiteError
        from assistant.nodes import VERIFIED
        from assistant.numbered_sources import evidence_from_dict
        from assistant.types import Answer
        from assistant.wiring import build_services

        model = loaded or LoadedModel(ExtractiveModel(embedder, reason="evaluation of extractive mode"),
                                      "extractive", "extractive", "evaluation of extractive mode")
        home = Path(tempfile.mkdtemp(prefix="onsite-eval-agent-"))
        turns = build_services(settings.model_copy(update={"home": home}), loaded=model, embedder=embedder,
                               retriever=retriever).turns

        def ask(question: str, filters: dict[str, Any] | None) -> Outcome:
            start, first, done, regenerated = time.perf_counter(), None, None, False
            for ev in turns.ask(question, filters=filters, user="evaluation"):
                if ev.type == "token" and first is None:
                    first = time.perf_counter()
                elif ev.type == "check" and ev.data.get("retry") and ev.data.get("name") in VERIFIED:
                    regenerated = True  # a draft failed a check and was written again
                elif ev.type == "done":
                    done = ev.data
                elif ev.type == "error":
                    raise OnsiteError(ev.data.get("message", "the turn failed"))
            if done is None:
                raise OnsiteError("the turn ended without an answer")
            answer = Answer(**done)
            cited_sources = [s for s in answer.sources if s["kind"] == "document" and s["n"] in answer.cited]
            cited = [evidence_from_dict({**s, "id": s["chunk_id"], "title_path": s["title"].split(" > "),
                                         "lang": answer.lang, "metadata": {}}) for s in cited_sources]
            text = answer.text.split("\n", 1)[1] if answer.mode == "extractive" and "\n" in answer.text else answer.text
            abstained = answer.status == "abstained"
            fell_back = any(c["name"] == "fallback" for c in answer.checks)
            source = "model" if answer.mode == "llm" else "fallback" if fell_back else "extract"
            attempts = 2 if regenerated else 1
            ttft = None if first is None else round((first - start) * 1000, 1)
            return Outcome("" if abstained else text, cited, abstained, answer.answerability.get("score"),
                           source=source, attempts=attempts, ttft_ms=ttft,
                           cited_texts=[s.get("text", "") for s in cited_sources])

        return ask

    return make


def evaluate_answers(dataset_dir: Path, settings: Settings | None = None, embedder: Embedder | None = None,
                     answerer: Answerer | None = None, mode: str = "extractive", k: int = 5,
                     unanswerable: bool = False, asker: AskerFactory | None = None, limit: int | None = None,
                     seed: int = 0, model: str | None = None) -> dict[str, Any]:
    """``limit`` questions sampled with ``seed`` (all of them without a limit), each asked once
    (and once more without its gold documents with ``unanswerable``)."""
    settings = settings or Settings()
    info, docs, queries = load_dataset(dataset_dir)
    answered = [q for q in queries if q.answer]
    # Abstention needs only gold documents: a set without reference answers is measured on all.
    asked = answered or (queries if unanswerable else [])
    if limit is not None and limit < len(asked):
        asked = random.Random(seed).sample(asked, limit)
    embedder = embedder or make_embedder(settings.embedding, settings.home)
    turn_ms: list[float] = []
    runs: list[tuple[EvalQuery, Outcome, Outcome | None]] = []
    scored: list[dict[str, Any]] = []  # per answered question: lang, recall, hit, contains
    with temporary_index(docs, settings, embedder) as built:
        ask = (asker or extractive_asker(answerer, k))(built.retriever, embedder)
        sources: dict[str, list[str]] = {}
        for path, doc_id in built.mapping.items():
            sources.setdefault(doc_id, []).append(path)
        for q in asked:
            t = time.perf_counter()
            out = ask(q.question, None)
            turn_ms.append((time.perf_counter() - t) * 1000)
            if q.answer:
                scored.append({
                    "lang": q.lang, "recall": token_recall(q.answer, out.text),
                    "hit": any(built.mapping.get(e.chunk.source) in q.gold_ids for e in out.cited),
                    "contains": any(_normalised(q.answer) in _normalised(t) for t in out.cited_texts)})
            held = None
            if unanswerable:
                held = ask(q.question, {"!source": [p for g in q.gold_ids for p in sources.get(g, [])]})
            runs.append((q, out, held))
        mapping = built.mapping
    outs = [out for _, out, _ in runs]
    ttfts = [o.ttft_ms for o in outs if o.ttft_ms is not None]
    result: dict[str, Any] = {
        "dataset": info.get("name"),
        "mode": mode,
        "model": model or mode,
        "questions": len(scored),
        "sample": {"limit": limit, "seed": seed, "of": len(answered) or len(queries)},
        **_answer_scores(scored),
        "model_answer_rate": _share(outs, lambda o: o.source == "model"),
        "model_answer_first_try_rate": _share(outs, lambda o: o.source == "model" and o.attempts == 1),
        "fallback_rate": _share(outs, lambda o: o.source == "fallback"),
        "abstention_rate_unanswerable": None,
        "wrong_abstention_rate": _share(outs, lambda o: o.abstained),
        "ttft_ms": {"p50": percentile_ms(ttfts, 50), "p95": percentile_ms(ttfts, 95)},
        "turn_ms": {"p50": percentile_ms(turn_ms, 50), "p95": percentile_ms(turn_ms, 95)},
        "by_lang": {lang: {"questions": sum(1 for x in scored if x["lang"] == lang),
                           **_answer_scores([x for x in scored if x["lang"] == lang])}
                    for lang in sorted({x["lang"] for x in scored})},
    }
    result["latency_ms"] = result["turn_ms"]  # the older name, kept for scripts that read it
    if unanswerable:
        result.update(abstention_report(runs, docs, mapping))
    return result


def _answer_scores(scored: list[dict[str, Any]]) -> dict[str, float]:
    n = max(1, len(scored))
    return {"answer_token_recall": round(sum(x["recall"] for x in scored) / n, 4),
            "citation_hit_rate": round(sum(x["hit"] for x in scored) / n, 4),
            "cited_passage_has_answer_rate": round(sum(x["contains"] for x in scored) / n, 4)}


def _share(items: list[Any], predicate: Callable[[Any], bool]) -> float:
    return round(sum(1 for x in items if predicate(x)) / max(1, len(items)), 4)


def _normalised(text: str) -> str:
    return " ".join(answer_tokens(text))


def abstention_report(runs: list[tuple[EvalQuery, Outcome, Outcome | None]], docs: list[EvalDoc],
                      mapping: dict[str, str]) -> dict[str, Any]:
    """Abstention on the held-out runs, wrong abstention on the normal ones, the AUROC of the
    score and the whole trade-off curve (abstain when score < threshold)."""
    pairs = [(out, held) for _, out, held in runs if held is not None]
    m = max(1, len(pairs))
    report: dict[str, Any] = {
        "abstention_questions": len(pairs),
        "abstention_rate_unanswerable": round(sum(h.abstained for _, h in pairs) / m, 4),
        "wrong_abstention_rate": round(sum(o.abstained for o, _ in pairs) / m, 4),
        "answerability_auroc": None,
        "curve": [],
    }
    scored = [(o.score, h.score) for o, h in pairs if o.score is not None and h.score is not None]
    if scored:
        from sklearn.metrics import roc_auc_score

        pos, neg = np.array(scored, dtype=float).T
        report["answerability_auroc"] = round(float(roc_auc_score([1] * len(pos) + [0] * len(neg), np.r_[pos, neg])), 4)
        report["curve"] = [{"threshold": t, "abstention_rate_unanswerable": round(float(np.mean(neg < t)), 4),
                            "wrong_abstention_rate": round(float(np.mean(pos < t)), 4)} for t in CURVE_THRESHOLDS]
    report["near_copies"] = near_copy_report(runs, docs, mapping)
    return report


def near_copy_report(runs: list[tuple[EvalQuery, Outcome, Outcome | None]], docs: list[EvalDoc],
                     mapping: dict[str, str]) -> dict[str, Any]:
    """How often the held-out search still found a near copy of a gold document (word-set
    Jaccard >= 0.5): those questions are probably answerable after all, a floor under the
    achievable abstention. Reported with the abstention rate on the rest."""
    words = {d.id: set(word_tokens(d.text)) for d in docs}

    def copied(q: EvalQuery, held: Outcome) -> bool:
        gold = [words[g] for g in q.gold_ids if g in words]
        found = {mapping.get(e.chunk.source) for e in held.evidence} - set(q.gold_ids) - {None}
        return any(len(g & words[f]) / max(1, len(g | words[f])) >= NEAR_COPY_JACCARD
                   for g in gold for f in found if f in words)

    held_runs = [(q, held) for q, _, held in runs if held is not None]
    if not any(held.evidence for _, held in held_runs):  # the asker does not report what it retrieved
        return {"share": None, "abstention_rate_unanswerable_without": None}
    flags = [(copied(q, held), held.abstained) for q, held in held_runs]
    clean = [a for c, a in flags if not c]
    return {"share": round(sum(c for c, _ in flags) / max(1, len(flags)), 4),
            "abstention_rate_unanswerable_without": round(sum(clean) / len(clean), 4) if clean else None}


def _best_chunk_per_doc(evidence: list[Evidence]) -> list[Evidence]:
    seen: set[str] = set()
    out = []
    for e in evidence:
        if e.chunk.doc_id not in seen:
            seen.add(e.chunk.doc_id)
            out.append(e)
    return out
