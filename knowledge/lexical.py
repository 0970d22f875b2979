"""Keyword retrieval: BM25 (bm25s) over several token "views" of the same chunks.

English text has one view (stemmed words). Chinese has three — jieba words, character
bigrams and single characters — because word segmentation of layperson questions and of
statute text disagree often; the bigram and character views recover what segmentation
missed. Views are scored separately and combined with per-language weights, so an English
query is never diluted by Chinese views and vice versa. Saved with bm25s's own numpy/JSON
format (``allow_pickle=False``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from knowledge.text import han_bigrams, han_chars, word_tokens

Tokenizer = Callable[[str], list[str]]

VIEWS: dict[str, Tokenizer] = {"words": word_tokens, "bigrams": han_bigrams, "chars": han_chars}

# Weight of each view for a query in a language; views absent here are not consulted.
VIEW_WEIGHTS: dict[str, dict[str, float]] = {
    "en": {"words": 1.0},
    # Equal votes: on stard_dev every view alone reaches recall@5 ≈ 0.53; together 0.557, and
    # the neighbourhood of equal weights is a plateau (±0.01), so nothing here is fitted.
    "zh": {"words": 1 / 3, "bigrams": 1 / 3, "chars": 1 / 3},
}

BM25_PARAMS = {"k1": 1.2, "b": 0.75}


class LexicalIndex:
    """Multi-view BM25 over a fixed list of documents (row i = chunk i of the store)."""

    def __init__(self, views: dict[str, object], size: int):
        self._views = views  # name -> bm25s.BM25
        self.size = size
        # Best score each token reaches in any chunk: the ceiling a query can score.
        self._token_max = {name: _token_maxima(r) for name, r in views.items()}

    @classmethod
    def build(cls, texts: list[str]) -> "LexicalIndex":
        import bm25s

        views = {}
        for name, tokenize in VIEWS.items():
            corpus = [tokenize(t) for t in texts]
            if not any(corpus):
                continue  # e.g. no Chinese at all: no bigram view
            retriever = bm25s.BM25(**BM25_PARAMS)
            retriever.index(corpus, show_progress=False)
            views[name] = retriever
        return cls(views, len(texts))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, retriever in self._views.items():
            retriever.save(str(folder / name), show_progress=False)
        (folder / "views.json").write_text(json.dumps({"views": sorted(self._views), "size": self.size}))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        import bm25s

        meta = json.loads((folder / "views.json").read_text())
        views = {name: bm25s.BM25.load(str(folder / name), mmap=False) for name in meta["views"]}
        return cls(views, int(meta["size"]))

    def document_frequencies(self, view: str = "words") -> tuple[dict[str, int], np.ndarray] | None:
        """(vocabulary term -> column, documents containing each term) of one token view; None
        when the view does not exist. Answerability weighs question words by rarity with it."""
        retriever = self._views.get(view)
        if retriever is None:
            return None
        return retriever.vocab_dict, np.diff(np.asarray(retriever.scores["indptr"]))

    def scores(self, query: str, lang: str, mask: np.ndarray | None = None) -> np.ndarray:
        """A score per chunk in [0, 1], weighted over views by language.

        Each view's BM25 is divided by the query's ceiling — the sum of the best score each
        query token reaches anywhere — rather than by the best chunk's score: a chunk that
        matches one common word of a long question then scores low, as it should, instead of
        1.0, and a confident dense match can outvote it. ``mask`` restricts scoring."""
        total = np.zeros(self.size, dtype=np.float32)
        weights = VIEW_WEIGHTS.get(lang, VIEW_WEIGHTS["en"])
        for name, weight in weights.items():
            retriever = self._views.get(name)
            if retriever is None:
                continue
            vocab = retriever.vocab_dict
            tokens = [t for t in VIEWS[name](query) if t in vocab]
            if not tokens:
                continue
            raw = retriever.get_scores(tokens, weight_mask=None if mask is None else mask.astype(np.float32))
            ceiling = float(sum(self._token_max[name][vocab[t]] for t in tokens))
            if ceiling > 0:
                total += weight * (raw / ceiling)
        return total


def _token_maxima(retriever) -> np.ndarray:
    """Per vocabulary id, the highest BM25 contribution of that token in any document."""
    scores = retriever.scores
    data, indptr = np.asarray(scores["data"]), np.asarray(scores["indptr"])
    out = np.zeros(len(indptr) - 1, dtype=np.float32)
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if len(nonempty):
        # Segments between consecutive non-empty starts hold exactly one column's data.
        out[nonempty] = np.maximum.reduceat(data, indptr[nonempty])
    return out
