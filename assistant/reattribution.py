"""Deterministic re-attribution: a statement whose numbers are not in the source it cites, but
are all in another source, is re-cited to the source that contains its numbers and shares most
of its words — before the checks judge it. Small models often write the right fact with the
wrong source number ("every 3 months [3]" where [3] is about drain fractions); the fact is
supported, only the pointer is wrong, and regenerating costs a whole model call.

Only pointers move: no word of the answer changes, and a number that appears in no source stays
unsupported (the number check then fails it as before). An uncited statement without numbers is
given the source that contains most of its words, when that is at least ``MIN_OVERLAP`` of them;
so is one that cites a source number that does not exist.
"""

from __future__ import annotations

import re

from assistant.grounding import MARKER, _NUMBER_RE, _supported, normalise_markers, source_numbers
from assistant.llm.extractive import word_overlap
from assistant.types import Source
from knowledge.text import split_sentences

MIN_OVERLAP = 0.6  # share of an uncited statement's content words one source must contain
_IDS = re.compile(r"\b[A-Za-z]{1,8}-?\d[\w-]*|\[\d{1,3}\]")  # P-101, GH-2-TEMP: names, not numbers
_END = re.compile(r"([.。!?！？;；:：]?)\s*$")


def reattribute(text: str, sources: list[Source]) -> tuple[str, list[str]]:
    """(text with corrected markers, one note per change)."""
    if not sources:
        return text, []
    numbers = {s.n: source_numbers(s) for s in sources}
    notes: list[str] = []
    lines = []
    for line in normalise_markers(text).split("\n"):
        out, pos = [], 0
        for sentence in split_sentences(line):
            at = line.find(sentence, pos)
            if at < 0:  # cannot place it: keep the rest of the line as written
                break
            out.append(line[pos:at])
            fixed = _fix(sentence, sources, numbers, notes)
            out.append(fixed)
            pos = at + len(sentence)
        out.append(line[pos:])
        lines.append("".join(out))
    return "\n".join(lines), notes


def _fix(sentence: str, sources: list[Source], numbers: dict[int, list[float]], notes: list[str]) -> str:
    refs = [int(n) for n in MARKER.findall(sentence)]
    bare = MARKER.sub(" ", sentence).strip()
    written = _NUMBER_RE.findall(_IDS.sub(" ", bare))  # every number, not only those with a unit
    if written:
        if refs and all(any(_supported(w, numbers.get(n, [])) for n in refs) for w in written):
            return sentence
        holders = [s for s in sources if all(_supported(w, numbers[s.n]) for w in written)]
    elif refs and all(n in numbers for n in refs):
        return sentence
    else:  # no numbers, and no citation or one to a source that does not exist
        holders = [s for s in sources if word_overlap(bare, s.text) >= MIN_OVERLAP]
    if not holders:
        return sentence
    best = max(holders, key=lambda s: (word_overlap(bare, s.text), -s.n))
    notes.append(f"“{bare[:60]}” cites [{best.n}]" + (f" instead of {''.join(f'[{n}]' for n in refs)}" if refs else ""))
    return _with_marker(sentence, best.n)


def _with_marker(sentence: str, n: int) -> str:
    stripped = re.sub(r"\s*\[\d{1,3}\]", "", sentence).rstrip()
    end = _END.search(stripped)
    stop = end.group(1) if end else ""
    body = stripped[: len(stripped) - len(stop)].rstrip() if stop else stripped
    return f"{body} [{n}]{stop}"
