"""Answerability: does the retrieved evidence actually answer the question, or should the
assistant say "I don't know" and show what it searched?

Retrieval always returns *something*; what separates an answer from a near miss is measured
with three signals, each in [0, 1] and each readable on its own:

- coverage — the share of the question's content terms (stemmed English words, jieba words for
  Chinese; weighted by the index's BM25 idf, so "P-101" counts more than "pump") found in one
  sentence of the evidence together with its title path. A near miss shares the topic words but
  not the specific ones.
- margin — how far the best document's coverage stands above the runner-up document's. When the
  answer is missing, several neighbouring documents match about equally and none stands out.
- cosine — the embedder's best cosine between the question and a sentence, in languages the
  embedder reads; otherwise a neutral stand-in (the median of answering sentences).

The score is their plain mean, not fitted weights: the best weighting within ±0.1 of a third
each gains under 0.01 AUROC (agxqa 0.907 against 0.904, emanual_s10 0.845 against 0.838).

Deliberately not used: the evidence's own BM25 score (``Evidence.bm25``). It is divided by the
query's ceiling, which counts question words that only the missing document contained; when a
document is really absent those words are out of vocabulary and drop out of the ceiling. On
agxqa the top lexical score separates 0.86 AUROC with the answer documents filtered out but
only 0.77 with them truly removed (lexical index rebuilt without them), so it would look better
in evaluation than it is. Coverage counts such words as missing either way: this score keeps
0.90 on agxqa when the documents are truly removed (0.84 → 0.82 on emanual_s10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from knowledge.embedding import Embedder, relative_similarity
from assistant.llm.extractive import answer_units
from knowledge.text import HAN, LATIN_WORD, detect_lang, latin_tokens, word_tokens
from knowledge.types import Evidence

# Words that frame a question rather than name its subject ("what are two examples of ..."):
# a passage answering it rarely repeats them, so they would count as missing.
QUESTION_WORDS = frozenset(latin_tokens(
    "type kind example name call term mean meaning describe description explain difference reason purpose "
    "way one two three four five six several many much consider criteria result outcome use role important "
    "factor main common list often frequently keep kept need needed"))
ZH_QUESTION_WORDS = frozenset(
    "什么 怎么 如何 是否 哪些 哪个 可以 应该 需要 多少 为什么 怎样 能否 请问 是不是 有没有 能不能 应当 一下 "
    "多久 多长 多大 多少度 一次 原因 引起".split())

# Calibrated on agxqa (570 questions, each asked with and without its gold documents; bundled
# MiniLM embedder), through the agent (`onsite eval answers DIR --unanswerable`): about the lowest
# threshold that abstains on 80 % of its unanswerable runs. Figures in the README.
THRESHOLD = 0.505
# Median best-sentence cosine of answerable questions on both sets (0.78, 0.75): with no
# embedder for the language the decision rests on the lexical signals at the same threshold.
NEUTRAL_COSINE = 0.75
# Margin when the evidence comes from a single document (nothing to compare with): between the
# answerable medians (0.32 agxqa, 0.24 emanual_s10). Never reached in the evaluations.
NEUTRAL_MARGIN = 0.25
# Both of the two best documents cover at least this share of the question: the margin no longer
# counts against the evidence. Costs 0.004 / 0.009 AUROC on agxqa / emanual_s10 (one gold document
# per question there); keeps a real site's overlapping manual + procedure from abstaining.
CORROBORATED = 0.7
COSINE_SENTENCES = 5  # embed only the best-covering sentences: same AUROC as all, a sixth of the cost

TermWeights = Callable[[str], float]


@dataclass
class Answerability:
    answerable: bool
    score: float  # higher = more answerable; THRESHOLD separates
    signals: dict[str, float] = field(default_factory=dict)  # named inputs, for the audit log / UI
    reason: str = ""  # one short human sentence


def bm25_idf(n: int, df: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def index_term_weights(version: Any) -> TermWeights | None:
    """Term weights from the live index: the BM25 idf of its word view (stemmed English, jieba
    Chinese), 0 documents for words it has never seen. None when the index has no word view."""
    lexical = getattr(version, "lexical", None)
    stats = lexical.document_frequencies("words") if lexical is not None else None
    if stats is None:
        return None
    vocab, df = stats
    n = int(lexical.size)

    def weight(term: str) -> float:
        i = vocab.get(term)
        return bm25_idf(n, int(df[i]) if i is not None and i < len(df) else 0)

    return weight


def terms(text: str, lang: str) -> list[str]:
    """Content terms as the index's word view sees them (single Han characters dropped)."""
    if lang == "zh":
        return [t for t in word_tokens(text) if len(t) > 1 or not HAN.match(t)]
    return latin_tokens(text)


def question_terms(question: str, lang: str) -> dict[str, str]:
    """Content term -> the question's own word for it (for the reason shown to people)."""
    if lang == "zh":
        found = {t: t for t in terms(question, lang)}
        stop = ZH_QUESTION_WORDS
    else:
        found = {}
        for word in LATIN_WORD.findall(question):
            for t in latin_tokens(word):
                found.setdefault(t, word)
        stop = QUESTION_WORDS
    kept = {t: w for t, w in found.items() if t not in stop}
    return kept or found


def assess(question: str, evidence: list[Evidence], embedder: Embedder | None = None,
           lang: str | None = None, term_weights: TermWeights | None = None) -> Answerability:
    """Judge ``evidence`` (as from ``Retriever.search(question, k=5, per_doc=3)``). Pass
    ``term_weights=index_term_weights(version)``: without it the weights come from the evidence
    alone, which separates less well (AUROC 0.75 instead of 0.84 on emanual_s10)."""
    if not evidence:
        return Answerability(False, 0.0, {}, "nothing in the knowledge base matched the question")
    lang = lang or detect_lang(question)
    wanted = question_terms(question, lang)
    if not wanted:
        return Answerability(False, 0.0, {}, "the question has no words to look for")
    if term_weights is None:
        bags = [set(terms(e.chunk.title + "\n" + e.chunk.text, lang)) for e in evidence]
        w = {t: bm25_idf(len(bags), sum(t in b for b in bags)) for t in wanted}
    else:
        w = {t: term_weights(t) for t in wanted}
    total = sum(w.values()) or 1.0

    def cover(bag: set[str]) -> float:
        return sum(w[t] for t in wanted if t in bag) / total

    # Best sentence (plus its title path) per passage; keep every sentence for the cosine.
    sentences: list[tuple[float, int, str, set[str]]] = []  # (coverage, passage, sentence, terms)
    per_passage: list[float] = []
    for i, e in enumerate(evidence):
        title = set(terms(e.chunk.title, lang))
        best = cover(title)
        for _, sentence in answer_units(e.chunk.text):  # a table row is read with its header
            bag = set(terms(sentence, lang)) | title
            c = cover(bag)
            sentences.append((c, i, sentence, bag))
            best = max(best, c)
        per_passage.append(best)
    coverage = max(per_passage)

    by_doc: dict[str, float] = {}
    for e, c in zip(evidence, per_passage):
        by_doc[e.chunk.doc_id] = max(by_doc.get(e.chunk.doc_id, 0.0), c)
    ranked = sorted(by_doc.values(), reverse=True)
    margin = ranked[0] - ranked[1] if len(ranked) > 1 else NEUTRAL_MARGIN
    if ranked[0] >= CORROBORATED:
        # Two documents that both cover the question well corroborate each other (a manual and
        # the procedure it points to); "none stands out" only means something below that.
        margin = max(margin, NEUTRAL_MARGIN)

    signals = {"coverage": round(coverage, 4), "margin": round(margin, 4)}
    cosine = None
    if embedder is not None and lang in embedder.languages and sentences:
        top = sorted(sentences, key=lambda s: -s[0])[:COSINE_SENTENCES]  # stable: rank order breaks ties
        best_cos = np.max(embedder.embed([s[2] for s in top]) @ embedder.embed_queries([question])[0])
        cosine = cosine_signal(float(best_cos), embedder)
        signals["cosine"] = round(cosine, 4)
    score = (coverage + margin + (NEUTRAL_COSINE if cosine is None else cosine)) / 3
    answerable = score >= THRESHOLD
    best = max(sentences, key=lambda s: s[0]) if sentences else None
    return Answerability(answerable, round(score, 4), signals,
                         _reason(answerable, wanted, best[3] if best else set(), margin, cosine,
                                 evidence[best[1]].chunk.title if best else ""))


def cosine_signal(cosine: float, embedder: Embedder) -> float:
    """The embedder's cosine on one scale for every model: its floor (unrelated text) at 0, its
    typical answering sentence at NEUTRAL_COSINE, capped at 1. MiniLM's own cosines are that
    scale already (floor 0, typical match 0.75); e5's 0.80-0.95 band is stretched onto it."""
    # max(): a configured match at or below the floor must not divide by zero
    scale = NEUTRAL_COSINE / max(0.05, float(relative_similarity(embedder.cosine_match, embedder.cosine_floor)))
    return round(min(1.0, float(relative_similarity(cosine, embedder.cosine_floor)) * scale), 6)


def _reason(answerable: bool, wanted: dict[str, str], best_terms: set[str], margin: float,
            cosine: float | None, title: str) -> str:
    found = [t for t in wanted if t in best_terms]
    missing = [wanted[t] for t in wanted if t not in best_terms]
    where = f" ({title})" if title else ""
    covers = f"the best-matching sentence{where} has {len(found)} of {len(wanted)} question terms"
    if answerable:
        return covers
    # Name the weakest signal against what an answering passage typically shows.
    shortfalls = {"coverage": 0.85 - len(found) / len(wanted), "margin": NEUTRAL_MARGIN - margin,
                  "cosine": (NEUTRAL_COSINE - cosine) if cosine is not None else -1.0}
    weakest = max(shortfalls, key=shortfalls.get)
    if weakest == "margin":
        return f"{covers}, but other documents match about as well and none stands out"
    if weakest == "cosine":
        return f"{covers}, but no sentence is close in meaning to the question"
    return f"{covers}; not found: {', '.join(missing[:4])}" if missing else covers


class Assessor:
    """``assess`` against the live index: question words are weighed by their rarity in the
    version being searched (the weights are read once per index version)."""

    def __init__(self, index: Any, embedder: Embedder | None):
        self.index = index
        self.embedder = embedder
        self._weights: tuple[str | None, TermWeights | None] = (None, None)

    def __call__(self, question: str, evidence: list[Evidence]) -> Answerability:
        version = self.index.version()
        if self._weights[0] != version.name:
            self._weights = (version.name, index_term_weights(version))
        return assess(question, evidence, self.embedder, term_weights=self._weights[1])
