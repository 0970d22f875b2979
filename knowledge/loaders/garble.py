"""Is a page's extracted text language, or encoding garbage? Pure functions, no I/O.

A PDF whose fonts carry a broken or missing ToUnicode map gives text that looks like text but
is not: glyph ids read as Greek, Indic and combining marks between Japanese kana; private-use
code points; UTF-8 read as Latin-1 ("Ã©"); letters, digits and case shuffled inside words by
a wrong one-byte encoding ("ST/uuTR/NSPORT"). Indexing that is worse than nothing, and the
page usually renders fine, so the loader re-reads such pages (another text engine, then OCR).

Each signal is a share of the page measured against a threshold that real Chinese, Japanese,
English, German and French text and numeric tables stay well below; ``check`` reports the
strongest one. Pages with fewer than MIN_CHARS visible characters are never judged.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

MIN_CHARS = 20

# (first code point, script). A code point belongs to the last range starting at or before it;
# "" marks code points that are no letters' script (punctuation, symbols, digits, gaps).
_RANGES: list[tuple[int, str]] = [
    (0x0000, ""), (0x0041, "Latin"), (0x005B, ""), (0x0061, "Latin"), (0x007B, ""),
    (0x00C0, "Latin"), (0x0250, "Latin"), (0x02B0, ""), (0x0300, "Combining"), (0x0370, "Greek"),
    (0x0400, "Cyrillic"), (0x0530, "Armenian"), (0x0590, "Hebrew"), (0x0600, "Arabic"),
    (0x0700, "Syriac"), (0x0750, "Arabic"), (0x0780, "Thaana"), (0x07C0, "Other"),
    (0x0900, "Devanagari"), (0x0980, "Bengali"), (0x0A00, "Gurmukhi"), (0x0A80, "Gujarati"),
    (0x0B00, "Oriya"), (0x0B80, "Tamil"), (0x0C00, "Telugu"), (0x0C80, "Kannada"),
    (0x0D00, "Malayalam"), (0x0D80, "Sinhala"), (0x0E00, "Thai"), (0x0E80, "Lao"),
    (0x0F00, "Tibetan"), (0x1000, "Myanmar"), (0x10A0, "Georgian"), (0x1100, "Hangul"),
    (0x1200, "Ethiopic"), (0x13A0, "Other"), (0x1AB0, "Combining"), (0x1B00, "Other"),
    (0x1D00, "Latin"), (0x1DC0, "Combining"), (0x1E00, "Latin"), (0x1F00, "Greek"), (0x2000, ""),
    (0x2C00, "Other"), (0x2C60, "Latin"), (0x2C80, "Other"), (0x2E80, "Han"), (0x2FE0, ""),
    (0x3040, "Kana"), (0x3100, "Bopomofo"), (0x3130, "Hangul"), (0x3190, "Han"),
    (0x31F0, "Kana"), (0x3200, ""), (0x3400, "Han"), (0x4DC0, ""), (0x4E00, "Han"),
    (0xA000, "Other"), (0xA720, "Latin"), (0xA800, "Other"), (0xAC00, "Hangul"), (0xD7B0, ""),
    (0xF900, "Han"), (0xFB00, "Latin"), (0xFB1D, "Hebrew"), (0xFB50, "Arabic"), (0xFE00, ""),
    (0xFE70, "Arabic"), (0xFF00, ""), (0xFF21, "Latin"), (0xFF3B, ""), (0xFF41, "Latin"),
    (0xFF5B, ""), (0xFF66, "Kana"), (0xFFA0, "Hangul"), (0xFFE0, ""), (0x10000, "Other"),
    (0x20000, "Han"), (0x32000, ""),
]
_STARTS = [start for start, _ in _RANGES]
# Scripts that are written together: Chinese, Japanese and Korean share Han characters.
_FAMILY = {"Han": "CJK", "Kana": "CJK", "Hangul": "CJK", "Bopomofo": "CJK"}
# Latin words and Greek letters (units, formulas) turn up inside text of any language.
_COMPANIONS = {"Latin", "Greek"}

_MOJIBAKE = re.compile(  # a UTF-8 lead byte read as Latin-1/cp1252, then a continuation byte
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_ALNUM = re.compile(r"[A-Za-z0-9]{3,}")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_WORD_CHAOS = re.compile(r"[a-z][A-Z]|[0-9][a-z]")  # "xSTRxtT3xR2tTOR"; not "MgSO4", "5th"


@dataclass(frozen=True)
class Verdict:
    garbled: bool
    score: float  # the strongest signal as a share of its threshold, capped at 1 (garbled at 1)
    reason: str  # what the strongest signal saw, for warnings and reports

    def __bool__(self) -> bool:
        return self.garbled


def script(ch: str) -> str:
    """The script of a letter or mark ("Latin", "Han", "Kana", "Greek", …); "" for others."""
    return _RANGES[bisect_right(_STARTS, ord(ch)) - 1][1]


def _family(name: str) -> str:
    return _FAMILY.get(name, name)


def _bad_char(ch: str) -> bool:
    """Private use, U+FFFD, control characters other than whitespace, unassigned code points."""
    cat = unicodedata.category(ch)
    return ch == "\ufffd" or cat in ("Co", "Cs", "Cn") or (cat == "Cc" and ch not in "\t\n\r")


def _odd_symbol(ch: str) -> bool:
    """Symbols text is not made of: dingbats, box drawing, Latin-1 signs (mojibake soup)."""
    cp = ord(ch)
    if 0xA1 <= cp <= 0xBF and ch not in "°±µ·×":
        return True
    return unicodedata.category(ch) in ("So", "Sk") and not 0x2460 <= cp <= 0x24FF  # ① … are fine


def _letter_scripts(text: str) -> tuple[Counter[str], int]:
    """Letters (and marks) per script; combining marks after a CJK character count as their own
    script, since no CJK text carries accents (kana voicing marks are kana)."""
    counts: Counter[str] = Counter()
    prev = ""
    stray_marks = 0
    for ch in text:
        name = script(ch)
        if not name or not (ch.isalpha() or unicodedata.category(ch).startswith("M")):
            prev = ""
            continue
        if name == "Combining":
            base = _family(prev) if prev else ""
            if base in ("Latin", "Greek", "Cyrillic"):
                continue  # an accent on a letter: part of that letter
            stray_marks += 1
        counts[name] += 1
        prev = name
    return counts, stray_marks


def _mixed_word_share(text: str) -> tuple[float, int]:
    """Share of words mixing scripts no language mixes inside a word (kana with Greek, Han with
    combining marks); Latin or Greek next to CJK ("PLC控制", "μg") is normal."""
    words = 0
    mixed = 0
    current: set[str] = set()
    for ch in text + " ":
        name = script(ch)
        if name and (ch.isalpha() or unicodedata.category(ch).startswith("M")):
            current.add(_family(name))
            continue
        if current:
            words += 1
            if len(current - _COMPANIONS) > 1 or (len(current) > 1 and current & {"Combining"}):
                mixed += 1
            current = set()
    return (mixed / words if words else 0.0), mixed


def check(text: str) -> Verdict:
    """Whether ``text`` (one page) is encoding garbage rather than language, and why."""
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < MIN_CHARS:
        return Verdict(False, 0.0, "too little text to judge")
    n = len(visible)
    signals: list[tuple[float, str]] = []  # (share / threshold, reason)

    bad = sum(1 for ch in visible if _bad_char(ch))
    if bad >= 10:  # pypdf reads some math fonts' minus sign as U+0000: a few per page are fine
        signals.append((bad / n / 0.15, f"{bad} private-use, replacement or control characters of {n}"))

    odd = sum(1 for ch in visible if _odd_symbol(ch))
    if odd >= 20:
        signals.append((odd / n / 0.25, f"{odd} stray symbols of {n} characters"))

    counts, stray_marks = _letter_scripts(text)
    letters = sum(counts.values())
    if letters >= MIN_CHARS:
        families: Counter[str] = Counter()
        for name, k in counts.items():
            families[_family(name)] += k
        main = families.most_common(1)[0][0]
        # Latin goes with anything (English terms, references), CJK with Latin (bilingual text);
        # Greek letters are units and formulas in Latin text but make no sense in quantity in CJK.
        allowed = {main, "Latin"} | ({"CJK", "Greek", "Cyrillic"} if main == "Latin" else set())
        foreign = {name: k for name, k in counts.items() if _family(name) not in allowed}
        n_foreign = sum(foreign.values())
        if n_foreign >= 10:
            top = ", ".join(f"{name} {k / letters:.0%}" for name, k in Counter(foreign).most_common(3))
            signals.append((n_foreign / letters / 0.2, f"letters of unrelated scripts among {main} text ({top})"))
        share, mixed = _mixed_word_share(text)
        if mixed >= 5:
            signals.append((share / 0.15, f"{mixed} words mix unrelated scripts ({share:.0%} of words)"))
        if stray_marks >= 5:
            signals.append((stray_marks / letters / 0.05, f"{stray_marks} combining marks with no letter to carry them"))

        mojibake = len(_MOJIBAKE.findall(text))
        if mojibake >= 5:
            signals.append((mojibake / letters / 0.03, f"{mojibake} UTF-8-read-as-Latin-1 pairs (mojibake)"))

    tokens = [t for t in _ALNUM.findall(text) if not _HEX.fullmatch(t)]  # hashes, serials
    if len(tokens) >= 8:
        chaotic = sum(1 for t in tokens if len(_WORD_CHAOS.findall(t)) >= 2)
        if chaotic >= 8:
            signals.append((chaotic / len(tokens) / 0.12,
                            f"{chaotic} of {len(tokens)} words shuffle case and digits (wrong font encoding)"))

    if not signals:
        return Verdict(False, 0.0, "reads as text")
    strength, reason = max(signals)
    return Verdict(strength >= 1.0, round(min(strength, 1.0), 3), reason)
