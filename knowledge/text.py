"""Language-aware text helpers: script detection, sentence splitting, lexical tokens.

Chinese and English often share one document (a Chinese manual quoting part numbers, an
English guide naming 灰霉病), so everything here works on runs of script, not whole texts.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# Latin words keep inner dots/hyphens so "3.5", "P-101", "ISO-10816" stay one token.
LATIN_WORD = re.compile(r"[A-Za-z0-9]+(?:[.\-/][A-Za-z0-9]+)*")
SCRIPT_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[A-Za-z0-9]+(?:[.\-/][A-Za-z0-9]+)*")

# Sentence ends: Chinese full stops (keep closing quotes/brackets with the sentence), or an
# English terminator followed by space and not preceded by a single letter/number ("e.g. ", "3.5").
_ZH_SENT = re.compile(r"(.+?[。！？；!?;…]+[”’」』）)]*)")
_EN_BOUNDARY = re.compile(r"(?<![A-Z])(?<!\b[a-z])(?<!\be\.g)(?<!\bi\.e)(?<!\bNo)(?<!\bvs)(?<!\bFig)([.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
ZH_MIN_SHARE = 0.15


def detect_lang(text: str) -> str:
    """'zh' when CJK characters are at least 15 % of the letters (of the first 50,000 characters),
    else 'en'. One CJK character carries about as much as a short English word, so a Chinese
    text quoting part numbers and units stays well above the threshold."""
    sample = text[:50_000]
    cjk = len(_CJK.findall(sample))
    latin = len(_LATIN_LETTER.findall(sample))
    return "zh" if cjk and cjk / (cjk + latin) >= ZH_MIN_SHARE else "en"


def split_sentences(text: str) -> list[str]:
    """Split into sentences, Chinese and English; no text is lost (pieces join back to the input
    modulo whitespace at the cuts)."""
    text = text.strip()
    if not text:
        return []
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        for piece in _split_zh(line):
            out.extend(_split_en(piece))
    return [s for s in (p.strip() for p in out) if s]


def _split_zh(line: str) -> list[str]:
    parts: list[str] = []
    pos = 0
    for m in _ZH_SENT.finditer(line):
        # Only cut on Chinese punctuation, or ASCII ;!? right after Han text.
        end_char = m.group(1).rstrip("”’」』）)]")[-1]
        if end_char in "!?;" and not HAN.search(m.group(1)[-3:]):
            continue
        parts.append(line[pos : m.end()])
        pos = m.end()
    parts.append(line[pos:])
    return [p for p in parts if p.strip()]


def _split_en(piece: str) -> list[str]:
    parts: list[str] = []
    pos = 0
    for m in _EN_BOUNDARY.finditer(piece):
        cut = m.end(1)
        parts.append(piece[pos:cut])
        pos = cut
    parts.append(piece[pos:])
    return [p for p in parts if p.strip()]


# --- lexical tokens -------------------------------------------------------------------------

EN_STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it its no not of on or such that the their then
    there these they this to was will with what which who whom whose when where why how do does did
    can could should would may might must shall i you he she we me my your our us them his her from
    about than so very too also just any all some each other more most own same only over under
    again further once here both few nor off out up down s t don now been being have has had having
    am were let""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer  # PyStemmer: C Snowball stemmer

        return Stemmer.Stemmer("english").stemWord
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return lambda w: w


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def latin_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed English words without stopwords; numbers and codes kept."""
    stem = _stemmer()
    out = []
    for w in LATIN_WORD.findall(text):
        w = w.lower()
        if w in EN_STOPWORDS:
            continue
        out.append(w if any(ch.isdigit() for ch in w) else stem(w))
    return out


def word_tokens(text: str) -> list[str]:
    """Words in either script: jieba search-mode words for Han runs, stemmed words for Latin."""
    out: list[str] = []
    for m in SCRIPT_RUN.finditer(text):
        run = m.group(0)
        if HAN.match(run):  # jieba's dictionary (~0.5 s) is loaded by the first Chinese text only
            out.extend(w for w in _jieba().cut_for_search(run) if w.strip())
        else:
            out.extend(latin_tokens(run))
    return out


def han_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of Han runs: robust to word-segmentation mistakes."""
    out: list[str] = []
    for run in HAN_RUN.findall(text):
        out.extend(run[i : i + 2] for i in range(len(run) - 1)) if len(run) > 1 else out.append(run)
    return out


def han_chars(text: str) -> list[str]:
    """Single Han characters: the highest-recall, lowest-precision view of Chinese text."""
    return HAN.findall(text)


_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")

TableRow = tuple[list[str], list[str]]  # (header cells, row cells)


def table_aware_lines(text: str) -> Iterator[tuple[str, TableRow | None]]:
    """The lines of a chunk's text, each Markdown table body row with its table's header: a
    table's header row and its |---| rule are consumed, any other line comes as (line, None)."""
    header: list[str] | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = None
            yield line, None
            continue
        if _TABLE_RULE.match(stripped):
            continue
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        yield line, (header, cells)


def row_pairs(row: TableRow) -> str:
    """A table row as "column: value" pairs, empty cells left out."""
    header, cells = row
    return "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells) if c)
