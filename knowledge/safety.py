"""Safety statements that relax a site rule, and the rule they contradict.

A document that says "lockout/tagout is not needed for P-101 seal replacement" (or 更换密封无需上锁挂牌)
is checked at index time against the site's regulations and procedures on the same topic. When a
rule there requires what the statement waives, the pair is a conflict: it is stored on the relaxing
chunk (``metadata["conflicts"]``) and in the index manifest, so that answers give the stricter rule
and name the document that disagrees, and an admin sees it in ``index status``.

Precision comes from three gates, all needed: a relaxing phrase, a safety topic (lockout, confined
space, permits, PPE, pesticide intervals) and a hazardous activity (replace, repair, clean, open …
or "while running"). "No tools are needed to open the filter cover" names no safety topic;
"巡检 … 上锁挂牌: 不需要" names no hazardous activity; neither conflicts with anything. A relaxing
statement the regulations themselves make (an exception: cord-and-plug equipment) is not a conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge.text import han_bigrams, latin_tokens, row_pairs, split_sentences, table_aware_lines
from knowledge.types import Chunk

# Bump when patterns change (the manifest records it; conflicts are recomputed every build anyway).
SAFETY_VERSION = "1"
RULE_KINDS = ("regulation", "procedure")  # documents whose rules win; folder "regulations" → regulation
CONFLICTS_LIST_CAP = 200

_I = re.IGNORECASE

# "not needed", "no need to", "may be skipped", "无需", "可以不" … what waives a requirement.
_RELAX_EN = re.compile(
    r"\b(?:is|are|be|was|were)\s+(?:not|no\s+longer)\s+(?:needed|required|necessary|mandatory|compulsory)\b"
    r"|\bnot\s+(?:needed|required|necessary)\s+(?:for|to|when|during|before)\b"
    r"|\bno\s+(?:need|requirement)\s+(?:to|for)\b|\bneed\s+not\b|\bneedn't\b|\bunnecessary\b"
    r"|\b(?:does|do|did)\s*(?:not|n't)\s+(?:need|require|have\s+to)\b"
    r"|\b(?:may|can|could)\s+(?:safely\s+)?be\s+(?:skipped|omitted|bypassed|waived|left\s+out|ignored)\b"
    r"|\b(?:skip|omit|bypass)\s+(?:the\s+)?(?:lock|tag|loto|isolat|permit|gas\s+test|ppe)"
    r"|\bwithout\s+(?:a\s+|any\s+)?(?:lock(?:ing)?[- ]?out|tag[- ]?out|loto|isolat\w*|permit|ppe)\b", _I)
# Work on running equipment, said as a permission ("can be opened while running"), not a hazard.
_RUNNING_EN = re.compile(
    r"\b(?:can|may|could|allowed\s+to|safe\s+to|ok(?:ay)?\s+to|fine\s+to)\s+(?:safely\s+)?(?:be\s+)?"
    r"(?:open(?:ed)?|remov(?:e|ed)|dismantl(?:e|ed)|service[d]?|repair(?:ed)?|work(?:ed)?\s+on|clean(?:ed)?)\b"
    r"[^.;:]{0,50}?\bwhile\s+(?:it\s+is\s+|(?:the\s+)?[\w-]+\s+(?:is\s+)?)?"
    r"(?:running|in\s+operation|operating|energi[sz]ed|live|under\s+pressure)\b", _I)
_RELAX_ZH = re.compile(r"无需|无须|不需要|不需|不用|不必|可以不|可不必|免于|可省略|可以省略|可跳过|可以跳过|没必要")
_ZH_RUNNING = r"(?:运行中|运行时|运转中|运转时|带电|带压|不停机|不停泵)(?:的情况下|状态下|时)?"
_ZH_WORK = r"(?:打开|拆|检修|维修|更换|作业|清理|清洗)"
_RUNNING_ZH = re.compile(
    rf"(?:可以|可|能|允许|照常|直接)在?(?:水泵|泵|设备)?{_ZH_RUNNING}[^。；;]{{0,6}}?{_ZH_WORK}"
    rf"|{_ZH_RUNNING}也?(?:可以|可|能|允许|照常|直接)[^。；;]{{0,6}}?{_ZH_WORK}"
    rf"|{_ZH_WORK}[^。；;]{{0,10}}?(?:无需|无须|不必|不用|不需要)(?:停机|停泵|停车)")

# Safety topics: the words that name them (EN stems are matched on lower-cased text).
TOPICS: dict[str, re.Pattern[str]] = {
    "lockout/tagout": re.compile(r"\block[- ]?(?:out|ing\s+out)|\btag[- ]?out|\bloto\b|\bisolat|\bde-?energi[sz]|"
                                 r"\bzero\s+energy|上锁|挂牌|隔离|断电|能量源", _I),
    "confined space": re.compile(r"\bconfined\s+space|\bgas\s+test|\bentry\s+permit|有限空间|受限空间|气体检测", _I),
    "work permit": re.compile(r"\bhot\s+work|\bwork\s+permit|\bpermit\b|动火|作业许可|许可证", _I),
    "protective equipment": re.compile(r"\bppe\b|\bprotective\s+(?:equipment|clothing)|\brespirator|\bgoggles|"
                                       r"\bface\s+shield|\bgloves\b|防护用品|护目镜|面屏|手套|呼吸防护|防毒面具|半面罩", _I),
    "pesticide intervals": re.compile(r"\bre-?entry\s+interval|\bpre-?harvest\s+interval|\bREI\b|\bPHI\b|"
                                      r"再进入|安全间隔期|最早采收", _I),
}
RUNNING_TOPIC = "lockout/tagout"  # "can be opened while running" waives isolation
# What makes the topic matter: work on equipment, entry, application. Inspections and readings don't.
_ACTIVITY = re.compile(
    r"\b(?:replac|repair|servic|maint|clean|open|dismantl|remov|adjust|regreas|greas|unblock|overhaul|weld|"
    r"cut|grind|enter|entry|spray|appl(?:y|ied|ication)|mix|harvest|handl|work\s+on|fix|seal|bearing)\w*"
    r"|检修|维修|维护|保养|清理|清洗|更换|换密封|拆|疏通|打开|开盖|进入|动火|焊接|切割|施药|喷施|配药|采收|作业", _I)
_REQUIRE = re.compile(r"\b(?:must|shall|required?|requires|never|always|only|no\s+one|prohibited|forbidden|"
                      r"before|every|all)\b|必须|应当|应|严禁|不得|禁止|须|方可|只能", _I)


@dataclass(frozen=True)
class Relaxation:
    sentence: str
    topics: tuple[str, ...]


def relaxation(sentence: str) -> Relaxation | None:
    """The safety topics a sentence relaxes (None when it relaxes none): a relaxing phrase, a
    safety topic and a hazardous activity together, or "opened while running" on its own."""
    running = bool(_RUNNING_EN.search(sentence) or _RUNNING_ZH.search(sentence))
    relaxes = running or bool(_RELAX_EN.search(sentence) or _RELAX_ZH.search(sentence))
    if not relaxes:
        return None
    topics = [name for name, pattern in TOPICS.items() if pattern.search(sentence)]
    if running and RUNNING_TOPIC not in topics:
        topics.append(RUNNING_TOPIC)
    if not topics or not (running or _ACTIVITY.search(sentence)):
        return None
    return Relaxation(sentence, tuple(topics))


def units(text: str) -> list[str]:
    """Sentences and table rows ("header: value" pairs, so a "上锁挂牌: 不需要" cell keeps its column)."""
    out = []
    for line, row in table_aware_lines(text):
        if row is not None:
            out.append(row_pairs(row))
            continue
        out.extend(s.strip() for s in split_sentences(line.strip()) if len(s.strip()) >= 4)
    return out


def relaxations(chunk: Chunk) -> list[Relaxation]:
    return [r for u in units(chunk.text) if (r := relaxation(u)) is not None]


def is_rule_chunk(chunk: Chunk) -> bool:
    return chunk.kind in RULE_KINDS


def _terms(text: str) -> set[str]:
    return set(latin_tokens(text)) | set(han_bigrams(text))


_RELAX_WORDS = _terms("not needed required necessary need skipped 无需 不需要 可以不 不必")


def _overlap(statement: set[str], text: str) -> float:
    return len(statement & _terms(text)) / len(statement) if statement else 0.0


@dataclass
class _Rule:
    chunk: Chunk
    sentence: str
    topic: str
    relaxing: bool  # the regulation's own exception ("lockout is not required for cord-and-plug …")


def _rules(chunks: list[Chunk]) -> list[_Rule]:
    out = []
    for chunk in chunks:
        if not is_rule_chunk(chunk):
            continue
        heading = chunk.title_path[-1] if chunk.title_path else ""
        for sentence in units(chunk.text):
            for topic, pattern in TOPICS.items():
                if pattern.search(sentence) or (pattern.search(heading) and _REQUIRE.search(sentence)):
                    out.append(_Rule(chunk, sentence, topic, relaxation(sentence) is not None))
    return out


def find_conflicts(chunks: list[Chunk], embedder: Any = None) -> list[tuple[Chunk, Relaxation, _Rule]]:
    """(relaxing chunk, its relaxation, the rule it contradicts) for every relaxing statement
    outside the regulations that a regulation or procedure on the same topic contradicts. The
    rule chosen is the one closest to the statement: shared words (asset, activity) plus the
    embedder's cosine where it knows both languages, same language first, requirement words
    ("must", "必须") breaking ties."""
    rules = _rules(chunks)
    if not rules:
        return []
    found = []
    for chunk in chunks:
        if is_rule_chunk(chunk):
            continue
        for relax in relaxations(chunk):
            candidates = [r for r in rules if r.topic in relax.topics]
            if not candidates:
                continue
            scores = np.array([_fit(relax.sentence, chunk.lang, r) for r in candidates], dtype=np.float32)
            scores += _cosines(embedder, relax.sentence, [r.sentence for r in candidates], chunk.lang)
            best = int(np.argmax(scores))
            # The regulations' own exception fits the statement at least as well: it agrees with them.
            if candidates[best].relaxing:
                continue
            found.append((chunk, relax, candidates[best]))
    return found


_STRONG = re.compile(r"\b(?:must|shall|required?|requires|never|no\s+one|prohibited|forbidden)\b|必须|应当|严禁|不得|禁止", _I)


def _activities(text: str) -> set[str]:
    return {m.group(0).lower()[:5] for m in _ACTIVITY.finditer(text)} | (
        {"run"} if re.search(r"\brun|运行|运转", text, _I) else set())


def _fit(statement: str, lang: str, rule: _Rule) -> float:
    """How well a rule answers a statement: a firm requirement ("must", "必须") about the same
    activity (replace, 更换 …) in the same language; shared words (the asset) count less, so that
    "P-101" alone does not pick a confined-space rule that happens to name the pump."""
    words = _terms(statement) - _RELAX_WORDS
    shared = _activities(statement) & _activities(rule.sentence)
    return (0.4 * bool(_STRONG.search(rule.sentence)) + 0.1 * bool(_REQUIRE.search(rule.sentence))
            + 0.3 * bool(_ACTIVITY.search(rule.sentence)) + 0.3 * min(len(shared), 2)
            + 0.5 * _overlap(words, rule.sentence) + 0.3 * (rule.chunk.lang == lang))


def _cosines(embedder: Any, query: str, texts: list[str], lang: str) -> np.ndarray:
    if embedder is None or lang not in getattr(embedder, "languages", ()):
        return np.zeros(len(texts), dtype=np.float32)
    try:
        from knowledge.embedding import relative_similarity

        sims = embedder.embed(texts) @ embedder.embed_queries([query])[0]
        return 0.5 * relative_similarity(sims, embedder.cosine_floor).astype(np.float32)
    except Exception:  # noqa: BLE001 - word overlap alone still decides
        return np.zeros(len(texts), dtype=np.float32)


def _short(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def mark_conflicts(chunks: list[Chunk], embedder: Any = None) -> list[dict[str, Any]]:
    """Set ``metadata["conflicts"]`` on relaxing chunks (clearing stale ones) and return the
    manifest entries, one per conflicting statement."""
    for chunk in chunks:
        chunk.metadata.pop("conflicts", None)
    entries = []
    for chunk, relax, rule in find_conflicts(chunks, embedder):
        conflict = {"topic": rule.topic, "sentence": _short(relax.sentence), "rule_chunk_id": rule.chunk.id,
                    "rule_source": rule.chunk.source, "rule_title": rule.chunk.title,
                    "rule_sentence": _short(rule.sentence, 400)}
        chunk.metadata.setdefault("conflicts", []).append(conflict)
        entries.append({"chunk_id": chunk.id, "source": chunk.source, "page": chunk.page, "title": chunk.title,
                        "added_by": chunk.metadata.get("added_by"), "added_at": chunk.metadata.get("added_at"),
                        **conflict})
    return entries
