"""Answers over a document that relaxes a site safety rule (see knowledge/safety.py).

When a passage the answer draws on carries ``metadata["conflicts"]`` (set at index time), the
rule it contradicts joins the sources, the answer opens with that rule, cited, and names the
document that disagrees, with who added it and when. The relaxing sentences are never quoted
(extract) nor shown to the model (prompt): a small model repeats what it reads.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePath
from typing import Any, Callable

from assistant.types import Source
from knowledge.provenance import describe
from knowledge.safety import relaxation
from knowledge.text import split_sentences
from knowledge.types import Chunk, Evidence

TOPICS_ZH = {"lockout/tagout": "上锁挂牌", "confined space": "有限空间作业", "work permit": "作业许可",
             "protective equipment": "劳动防护用品", "pesticide intervals": "农药间隔期"}


def conflicts_of(meta_or_data: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in meta_or_data.get("conflicts") or [] if isinstance(c, dict) and c.get("rule_chunk_id")]


def with_rules(evidence: list[dict[str, Any]], fetch: Callable[[str], Chunk | None]) -> list[dict[str, Any]]:
    """The evidence plus the rule chunk of every conflict in it (fetched by id from the live
    index), after the retrieved passages: the numbers of those stay as they were."""
    have = {e.get("id") for e in evidence}
    out = list(evidence)
    for e in evidence:
        for c in conflicts_of(e.get("metadata") or {}):
            if c["rule_chunk_id"] in have:
                continue
            chunk = fetch(c["rule_chunk_id"])
            if chunk is not None:
                have.add(chunk.id)
                out.append(Evidence(chunk=chunk, rank=len(out) + 1).to_dict())
    return out


def display_name(source: Source, lang: str = "en") -> str:
    """«title» (folder/file, added by … on …): no server path, enough to find the file."""
    path = PurePath(source.source or "")
    where = "/".join(path.parts[-2:]) if len(path.parts) >= 2 else path.name
    title = source.title.split(" > ")[0] if source.title else ""
    added = describe(source.data or {}, lang)
    inside = ("，" if lang == "zh" else ", ").join(x for x in (where, added) if x)
    if not inside:
        return f"«{title}»"
    return f"«{title}»（{inside}）" if lang == "zh" else f"«{title}» ({inside})"


def note(sources: list[Source], lang: str) -> str:
    """One line per contradicted rule: the rule, cited, and the document(s) that disagree, each
    sentence cited (the checks want safety statements cited). '' when no source is in conflict
    (or its rule is not among the sources)."""
    by_chunk = {s.chunk_id: s for s in sources if s.kind == "document" and s.chunk_id}
    rules: dict[str, tuple[dict[str, Any], list[Source]]] = {}
    for s in sources:
        for c in conflicts_of(s.data or {}):
            if c["rule_chunk_id"] in by_chunk and s.chunk_id != c["rule_chunk_id"]:
                entry = rules.setdefault(c["rule_chunk_id"], (c, []))
                if s not in entry[1]:
                    entry[1].append(s)
    lines = []
    for rule_id, (c, against) in rules.items():
        n = by_chunk[rule_id].n
        sentence = (c.get("rule_sentence") or by_chunk[rule_id].text).strip().rstrip("。.;；")
        if lang == "zh":
            others = "、".join(display_name(s, "zh") for s in against)
            topic = TOPICS_ZH.get(c.get("topic", ""), c.get("topic", ""))
            lines.append(f"安全规定：“{sentence}”[{n}]。注意：{others}关于{topic}的说法与此不同，以现场规定[{n}]为准。")
        else:
            others = "; ".join(display_name(s) for s in against)
            lines.append(f"Site rule: “{sentence}” [{n}]. Note: {others} says otherwise about {c.get('topic')}; "
                         f"the site rule [{n}] applies.")
    return "\n".join(lines)


def without_relaxations(text: str) -> str:
    """The passage without the sentences that relax a safety rule."""
    kept = [x for x in split_sentences(text) if relaxation(x) is None]
    return " ".join(x.strip() for x in kept if x.strip())


def for_prompt(sources: list[Source]) -> list[Source]:
    """What the model reads: a passage in conflict loses its relaxing sentences (its number stays)."""
    return [replace(s, text=without_relaxations(s.text)) if conflicts_of(s.data or {}) else s for s in sources]
