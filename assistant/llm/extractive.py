"""Extractive mode: answers built from the evidence itself when no language model is loaded.

The sentences of the top passages that are closest to the question (embedder cosine where the
embedder knows the language, word overlap always) are returned in reading order, each followed
by its citation, under a label that says plainly that this is an extract and why. Nothing is
generated, so nothing can be made up; what it cannot do is combine or rephrase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from assistant.llm.base import ChatMessage, GenerationOptions, ModelError, StreamEvent
from assistant.redact import redact_text
from knowledge.embedding import Embedder, relative_similarity
from knowledge.injection import is_flagged
from knowledge.safety import relaxation
from knowledge.text import detect_lang, han_bigrams, latin_tokens, row_pairs, split_sentences, table_aware_lines
from knowledge.types import Evidence

LABEL = {  # one line in the answer's language (the reason is a short English phrase: the zh line goes without)
    "en": "Extract from the documents, no language model wrote it ({reason}):",
    "zh": "以下为文档原文摘录，非语言模型生成：",
}
# Measured on agxqa and emanual_s10 (evals/answers.py): a prior of 0.15-0.25 with overlap weight 1
# is a plateau; below it sentences from lower-ranked passages crowd out the best one.
PASSAGE_PRIOR = 0.2  # score bonus for the best-ranked passage, falling linearly to 0
OVERLAP_WEIGHT = 1.0  # word overlap added to the embedder's cosine
# A question asking for an amount, a limit, an interval or a time is answered by a sentence with a
# number in it: such sentences get this bonus (the interval line, not the grease brand).
QUANTITY_BONUS = 0.25
INTERVAL_BONUS = 0.6  # "how often": the line giving an interval is the answer, whatever else matches
_QUANTITY_QUESTION = re.compile(
    r"\b(how (often|long|much|many|high|low|hot|cold|warm|far|frequent\w*)|what (is the |are the )?(temperature|"
    r"limits?|ranges?|interval|values?|pressure|dose|rate|level|setting|concentration|ec|ph|time)|at what|when|"
    r"(alarm|trip) (limits?|values?|settings?))\b"
    r"|多少|多久|多长|多高|多低|几[次天小个周月度]|什么时候|范围|间隔|频率|周期|温度|限值|浓度|多大", re.I)
_DIGIT = re.compile(r"\d")
_INTERVAL_QUESTION = re.compile(r"\bhow (often|frequent\w*)\b|\bat what interval|多久|多长时间.{0,4}一次|频率|间隔|周期", re.I)
_TIME_UNIT = r"\b(?:months?|weeks?|days?|hours?|h|years?|shifts?|minutes?|min)\b"
_INTERVAL = re.compile(rf"\b(?:every|each|once|twice|per|interval|quarterly|monthly|weekly|daily|yearly|annually)\b"
                       rf"[^.;。；]{{0,30}}?(?:\d[^.;。；]{{0,12}}?{_TIME_UNIT}|{_TIME_UNIT})"
                       r"|每.{0,10}(?:天|日|周|月|年|小时|班|季度)|\d+\s*(?:个月|周|天|小时|年).{0,6}一次|每季度|每年|每月|每周|每班|周期|间隔", re.I)


@dataclass
class Extract:
    text: str  # label + sentences with [n] markers
    sentences: list[tuple[str, int]] = field(default_factory=list)  # (sentence, citation number 1..)
    citations: list[Evidence] = field(default_factory=list)  # citation n = citations[n - 1]
    lang: str = "en"


class ExtractiveModel:
    """A ChatModel stand-in with no generation: ``answer`` builds a cited extract."""

    name = "extractive"
    mode = "extractive"

    def __init__(self, embedder: Embedder | None, reason: str = "no model file is configured",
                 max_sentences: int = 3, passages: int = 5):
        self.embedder = embedder
        self.reason = reason
        self.max_sentences = max_sentences
        self.passages = passages

    @property
    def reason(self) -> str:
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        # every answer's label carries it: file names, not the server's folders (the log has those)
        self._reason = redact_text(value)

    def answer(self, question: str, evidence: list[Evidence], lang: str | None = None) -> Extract:
        lang = lang or detect_lang(question)
        label = LABEL.get(lang, LABEL["en"]).format(reason=self.reason)
        passages = evidence[: self.passages]
        candidates: list[tuple[int, int, str]] = []  # (passage index, position, sentence)
        matched: list[str] = []  # what each candidate is scored on (a table row with its header)
        for p, ev in enumerate(passages):
            # A passage that reads like instructions to the assistant is never quoted as the answer,
            # nor a sentence that relaxes a safety rule the regulations set (the answer's note gives it).
            if is_flagged(ev.chunk):
                continue
            conflicted = bool(ev.chunk.metadata.get("conflicts"))
            for pos, (shown, scored) in enumerate(answer_units(ev.chunk.text)):
                if conflicted and relaxation(shown) is not None:
                    continue
                candidates.append((p, pos, shown))
                matched.append(scored)
        if not candidates:
            return Extract(text=label, lang=lang)
        scores = self._scores(question, matched, lang)
        wanted = answer_kind(question)  # "how often / 多少": the sentence with such a number answers it
        if wanted is not None:
            bonus = INTERVAL_BONUS if wanted is _INTERVAL else QUANTITY_BONUS
            scores = scores + np.array([bonus * bool(wanted.search(c[2])) for c in candidates])
        # A small prior for the better-ranked passage: retrieval already judged it more relevant.
        scores = scores + np.array([PASSAGE_PRIOR * (len(passages) - c[0]) / len(passages) for c in candidates])
        chosen = sorted(np.argsort(-scores)[: self.max_sentences].tolist(), key=lambda i: candidates[i][:2])
        cited: list[int] = []  # passage indexes in citation order
        sentences: list[tuple[str, int]] = []
        for i in chosen:
            p, _, sentence = candidates[i]
            if p not in cited:
                cited.append(p)
            sentences.append((sentence, cited.index(p) + 1))
        joiner = "" if lang == "zh" else " "
        body = joiner.join(f"{s} [{n}]" for s, n in sentences)
        return Extract(text=f"{label}\n{body}", sentences=sentences, citations=[passages[p] for p in cited], lang=lang)

    def _scores(self, question: str, sentences: list[str], lang: str) -> np.ndarray:
        overlap = np.array([word_overlap(question, s) for s in sentences], dtype=np.float32)
        if self.embedder is None or lang not in self.embedder.languages:
            return overlap
        cos = relative_similarity(self.embedder.embed(sentences) @ self.embedder.embed_queries([question])[0],
                                  self.embedder.cosine_floor)
        return cos + OVERLAP_WEIGHT * overlap

    # The ChatModel protocol: there is no model to stream from or to decide with.
    def stream(self, messages: list[ChatMessage], options: GenerationOptions | None = None) -> Iterator[StreamEvent]:
        raise ModelError(f"no language model is loaded ({self.reason}); use answer() for an extract")

    def decide(self, messages, schema, options=None):
        raise ModelError(f"no language model is loaded ({self.reason}); decisions need a model")


def answer_units(text: str) -> list[tuple[str, str]]:
    """(what is quoted, what is scored) for each sentence or table row of a passage. A table row
    is scored together with its table's header row and quoted as "column: value" pairs, so
    "| 育苗期 | 22–25 | 17–19 |" answers "苗期白天温度" as "生育阶段: 育苗期; 白天气温（°C）: 22–25; …"."""
    units: list[tuple[str, str]] = []
    for line, row in table_aware_lines(text):
        if row is not None:
            header, cells = row
            units.append((row_pairs(row), f"{' '.join(header)} {' '.join(cells)}"))
            continue
        for sentence in split_sentences(line.strip()):
            sentence = sentence.strip()
            if len(sentence) >= 4:
                units.append((sentence, sentence))
    return units


def answer_kind(question: str) -> re.Pattern | None:
    """What a sentence answering the question contains: an interval for "how often / 多久",
    any number for other amounts, limits and times; None when the question asks for neither."""
    if _INTERVAL_QUESTION.search(question):
        return _INTERVAL
    return _DIGIT if _QUANTITY_QUESTION.search(question) else None


def _terms(text: str) -> set[str]:
    return set(latin_tokens(text)) | set(han_bigrams(text))


def word_overlap(question: str, sentence: str) -> float:
    """Share of the question's content words (stemmed; Chinese bigrams) found in the sentence."""
    q = _terms(question)
    return len(q & _terms(sentence)) / len(q) if q else 0.0
