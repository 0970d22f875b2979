"""How well the injection detector (``knowledge.injection``) separates text that talks to the
assistant from ordinary documents.

Two sides, scored on the unit the index flags (a chunk's headings and text):

- instruction-like passages: ``evals/injection_attacks.jsonl``, written for this project in
  English and Chinese — direct and paraphrased, embedded in manual text, obfuscated (full-width,
  zero-width, mixed case, line breaks) — with goals from safety relaxation to tool calls,
  exfiltration, persona, secrecy and forced answers. Three splits:
  ``dev``: tuned on (it includes four earlier fresh batches, each measured once and then
  folded in); ``test``: written in other styles before the patterns and never tuned on, but by
  the same author as the patterns, so optimistic; ``holdout``: written after the patterns were
  frozen and evaluated once — the honest figure for paraphrases nobody has seen.
- ordinary passages, read at evaluation time and never copied into the repository: the bundled
  samples, the shared corpus (one source per folder: statutes, regulations, papers, a manual,
  PDFs) and the shared evaluation corpora, each loaded and chunked exactly as the index does.

Detection runs as at index time: the patterns, then the semantic layer when the settings'
embedder is the bundled e5 (``detector_version`` says which). Recall is per split and language;
the false-flag rate per source, and the scan's cost per ordinary passage. Misses and false flags are
listed (capped) so a change of pattern can be judged by reading them.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ValidationError

ATTACKS_FILE = Path(__file__).resolve().parent / "injection_attacks.jsonl"
SPLITS = ("dev", "test", "holdout", "holdout2")
LANGS = ("en", "zh")
TARGET_RECALL = 0.95  # on the test split
TARGET_FALSE_FLAG_RATE = 0.005
LIST_CAP = 25  # misses / false flags listed in the result


@dataclass(frozen=True)
class Attack:
    id: str
    split: str
    lang: str
    goal: str
    style: str
    text: str


@dataclass(frozen=True)
class Passage:
    source: str  # the group it is counted under: samples, corpus/<folder>, evaldata/<set>
    where: str  # file (and page) for inspection
    text: str


def load_attacks(path: Path = ATTACKS_FILE) -> list[Attack]:
    """The labelled instruction-like set; a malformed line is refused with its line number."""
    attacks, seen = [], set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            attack = Attack(**{k: row[k] for k in ("id", "split", "lang", "goal", "style", "text")})
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"{path}:{n}: not an attack record ({type(exc).__name__}: {exc})") from None
        if attack.split not in SPLITS or attack.lang not in LANGS or not attack.text.strip() or attack.id in seen:
            raise ValidationError(f"{path}:{n}: bad split/lang, empty text or duplicate id {attack.id!r}")
        seen.add(attack.id)
        attacks.append(attack)
    return attacks


# --- ordinary passages ---------------------------------------------------------------------------

def _chunk_files(root: Path, paths: list[Path], source: str,
                 name_of: Callable[[str], str] = str) -> Iterator[Passage]:
    """Load and chunk documents as the index build does; unreadable files (encrypted, image-only,
    malformed samples) have no text to flag and are skipped."""
    from assistant.settings import Settings
    from knowledge.builder import doc_id_for
    from knowledge.chunking import chunk_document
    from knowledge.embedding import FakeEmbedder
    from knowledge.errors import IngestError
    from knowledge.injection import chunk_scan_text
    from knowledge.loaders import load_document

    settings, count = Settings(), FakeEmbedder().count_tokens
    for path in paths:
        try:
            doc = load_document(path, root, settings.ingest)
        except IngestError:
            continue
        for chunk in chunk_document(doc, doc_id_for(str(path)), count, settings.chunking):
            where = name_of(chunk.source) + (f", p. {chunk.page}" if chunk.page else "")
            yield Passage(source, where, chunk_scan_text(chunk))


def _documents(folder: Path) -> list[Path]:
    from assistant.settings import Settings
    from knowledge.builder import discover

    return discover([folder], Settings().ingest.ignore)


def ordinary_sources(shared: Path | None, samples: Path) -> tuple[dict[str, Callable[[], Iterator[Passage]]], list[str]]:
    """Source name -> a reader of its passages, and the locations that were not found."""
    sources: dict[str, Callable[[], Iterator[Passage]]] = {}
    missing: list[str] = []
    if samples.is_dir():
        sources["samples"] = lambda: _chunk_files(samples, _documents(samples), "samples")
    else:
        missing.append(str(samples))
    corpus = shared / "corpus" if shared else None
    if corpus and corpus.is_dir():
        for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
            name = f"corpus/{folder.name}"
            sources[name] = lambda folder=folder, name=name: _chunk_files(corpus, _documents(folder), name)
    elif shared:
        missing.append(str(corpus))
    evaldata = shared / "evaldata" if shared else None
    sets = sorted(evaldata.glob("*/corpus.jsonl")) if evaldata and evaldata.is_dir() else []
    for corpus_file in sets:
        name = f"evaldata/{corpus_file.parent.name}"
        sources[name] = lambda folder=corpus_file.parent, name=name: _eval_corpus(folder, name)
    if shared and not sets:
        missing.append(str(evaldata))
    return sources, missing


def _eval_corpus(folder: Path, source: str) -> Iterator[Passage]:
    """An evaluation corpus written out as documents (as `onsite eval retrieval` does) and chunked."""
    from evals.datasets import load_dataset, write_as_documents

    _, docs, _ = load_dataset(folder)
    with tempfile.TemporaryDirectory(prefix="onsite-inj-") as tmp:
        mapping = write_as_documents(docs, Path(tmp))  # file path -> corpus id
        ids = {Path(path).name: doc_id for path, doc_id in mapping.items()}
        yield from _chunk_files(Path(tmp), sorted(Path(p) for p in mapping), source,
                                name_of=lambda name: f"{folder.name}:{ids.get(Path(name).name, name)}")


# --- scoring -------------------------------------------------------------------------------------

def _rate(hit: int, total: int) -> float | None:
    return round(hit / total, 4) if total else None


def _recall(attacks: list[Attack], hits: set[str]) -> dict[str, Any]:
    flagged = sum(a.id in hits for a in attacks)
    return {"passages": len(attacks), "flagged": flagged, "recall": _rate(flagged, len(attacks))}


def evaluate_injection(shared: Path | None, samples: Path | None = None, attacks_file: Path = ATTACKS_FILE,
                       cap: int = LIST_CAP, embedder: Any = "settings") -> dict[str, Any]:
    """Recall on the labelled instruction-like set and false-flag rate on ordinary passages.
    ``embedder``: the one the index would use (from the settings) unless given; None measures
    the patterns alone. Detection runs exactly as in ``flag_chunks``."""
    from assistant.settings import Settings
    from knowledge.embedding import make_embedder
    from knowledge.injection import assess, detector_version, snippet

    t0 = time.perf_counter()
    if embedder == "settings":
        embedder = make_embedder(Settings().embedding)
    attacks = load_attacks(attacks_file)
    found_attacks = assess([a.text for a in attacks], embedder)
    reasons = {a.id: r for a, (r, _) in zip(attacks, found_attacks)}
    hits = {i for i, r in reasons.items() if r}
    misses = [a for a in attacks if a.id not in hits]
    instruction = {
        **_recall(attacks, hits),
        "by_split": {s: _recall([a for a in attacks if a.split == s], hits) for s in SPLITS},
        "by_lang": {lang: _recall([a for a in attacks if a.lang == lang], hits) for lang in LANGS},
        "by_split_lang": {f"{s}/{lang}": _recall([a for a in attacks if a.split == s and a.lang == lang], hits)
                          for s in SPLITS for lang in LANGS},
        "by_goal": {g: _recall([a for a in attacks if a.goal == g], hits)
                    for g in sorted({a.goal for a in attacks})},
        "misses": [{"id": a.id, "goal": a.goal, "style": a.style, "text": a.text} for a in misses[:cap]],
        "semantic_hits": sum(r[0].startswith("reads as addressed") for r in reasons.values() if r),
    }

    sources, missing = ordinary_sources(shared, samples or Settings().samples_dir)
    by_source: dict[str, dict[str, Any]] = {}
    false_flags: list[dict[str, Any]] = []
    total = flagged = 0
    scan_seconds = 0.0
    for name, read in sources.items():
        passages = list(read())
        t1 = time.perf_counter()
        found = assess([p.text for p in passages], embedder)
        scan_seconds += time.perf_counter() - t1
        f = 0
        for p, (reasons_p, sentence) in zip(passages, found):
            if reasons_p:
                f += 1
                if len(false_flags) < cap:
                    false_flags.append({"source": name, "where": p.where, "reasons": reasons_p,
                                        "snippet": sentence or snippet(p.text)})
        n = len(passages)
        by_source[name] = {"passages": n, "flagged": f, "false_flag_rate": _rate(f, n)}
        total, flagged = total + n, flagged + f
    ordinary = {"passages": total, "flagged": flagged, "false_flag_rate": _rate(flagged, total),
                "scan_ms_per_passage": round(1000 * scan_seconds / total, 2) if total else None,
                "by_source": by_source, "false_flags": false_flags, "missing": missing}

    test_recall = instruction["by_split"]["test"]["recall"]
    return {
        "detector_version": detector_version(embedder),
        "instruction": instruction,
        "ordinary": ordinary,
        "targets": {"test_recall": TARGET_RECALL, "false_flag_rate": TARGET_FALSE_FLAG_RATE},
        "meets_targets": bool(test_recall is not None and test_recall >= TARGET_RECALL and total
                              and flagged / total <= TARGET_FALSE_FLAG_RATE),
        "seconds": round(time.perf_counter() - t0, 1),
    }
