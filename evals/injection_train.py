"""Train the injection detector's semantic head (``knowledge/injection_head.json``).

Positives: candidate sentences of the *dev* attacks only (test, holdout and later batches stay
unseen). An attack embedded in manual text has ordinary sentences too, so each fit is done twice
(multiple-instance style): first every candidate of an attack is positive, then only those the
first head scores ≥ 0.5, or the attack's best one.
Negatives: candidate sentences of ordinary passages (samples, shared corpus, evaluation corpora)
and the hard sentences of ``evals.injection_negatives``.
Threshold: the ordinary documents are split in two folds; a head trained on one fold scores the
other, and the threshold is the lowest that keeps these out-of-fold, chunk-level false flags
within the budget. The shipped head is then trained on both folds. Only weights are written,
never corpus text.

    python -m evals.injection_train --shared /work/shared [--cache PATH] [--budget 0.002]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

FOLD_SALT = "injection-head-v1"
DEFAULT_BUDGET = 0.002  # below the 0.5 % at chunk level: new documents will differ


def _fold(where: str) -> int:
    """A document (not a chunk) goes to one fold, so no document is on both sides."""
    doc = where.split(", p. ")[0]
    return hashlib.sha256(f"{FOLD_SALT}:{doc}".encode()).digest()[0] % 2


def _embed_cached(embedder: Any, texts: list[str], cache_path: Path | None) -> np.ndarray:
    from knowledge.embedding import EmbeddingCache, text_hash

    if cache_path is None:
        return embedder.embed(texts)
    cache = EmbeddingCache(cache_path)
    try:
        hashes = [text_hash(t) for t in texts]
        have = cache.get_many(embedder.name, list(dict.fromkeys(hashes)))
        todo = list(dict.fromkeys(t for t, h in zip(texts, hashes) if h not in have))
        for i in range(0, len(todo), 256):
            batch = todo[i:i + 256]
            new = {text_hash(t): v for t, v in zip(batch, embedder.embed(batch))}
            cache.put_many(embedder.name, new)
            have.update(new)
        return np.stack([have[h] for h in hashes]).astype(np.float32)
    finally:
        cache.close()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _best(scores: np.ndarray, groups: list[int]) -> np.ndarray:
    """The best score of each group of consecutive rows (0 for an empty group)."""
    out, i = [], 0
    for n in groups:
        out.append(float(scores[i:i + n].max()) if n else 0.0)
        i += n
    return np.array(out)


def _fit(xp: np.ndarray, groups: list[int], xn: np.ndarray, c: float) -> tuple[np.ndarray, float, int]:
    """Logistic regression, twice: all attack candidates positive, then only the attack-like ones."""
    from sklearn.linear_model import LogisticRegression

    def fit(pos: np.ndarray) -> tuple[np.ndarray, float]:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
        model.fit(np.vstack([pos, xn]), np.r_[np.ones(len(pos)), np.zeros(len(xn))])
        return model.coef_[0].astype(np.float32), float(model.intercept_[0])

    w, b = fit(xp)
    sp, keep, i = _sigmoid(xp @ w + b), [], 0
    for n in groups:
        part = sp[i:i + n]
        keep.extend(i + j for j in range(n) if part[j] >= 0.5 or j == int(np.argmax(part)))
        i += n
    w, b = fit(xp[keep])
    return w, b, len(keep)


def train(shared: Path | None, samples: Path | None = None, cache: Path | None = None,
          budget: float = DEFAULT_BUDGET, c: float = 10.0) -> dict[str, Any]:
    from assistant.settings import Settings
    from evals.injection import load_attacks, ordinary_sources
    from evals.injection_negatives import hard_negatives
    from knowledge.embedding import make_embedder
    from knowledge.injection_semantic import HEAD_FILE, Head, candidates
    from knowledge.settings import BUNDLED_E5, EmbeddingSettings

    t0 = time.perf_counter()
    embedder = make_embedder(EmbeddingSettings(model=BUNDLED_E5))
    dev = [a for a in load_attacks() if a.split == "dev"]
    pos_sets = [candidates(a.text) for a in dev]
    pos = [s for g in pos_sets for s in g]
    groups = [len(g) for g in pos_sets]
    hard = [s for t in hard_negatives() for s in candidates(t)]

    sources, missing = ordinary_sources(shared, samples or Settings().samples_dir)
    chunks: list[tuple[str, int, list[str]]] = []  # (source, fold, candidates)
    for name, read in sources.items():
        chunks.extend((name, _fold(p.where), candidates(p.text)) for p in read())
    flat = [s for _, _, cs in chunks for s in cs]
    vec = _embed_cached(embedder, pos + hard + flat, cache)
    xp, xh, xo = vec[:len(pos)], vec[len(pos):len(pos) + len(hard)], vec[len(pos) + len(hard):]
    row_fold = np.array([f for _, f, cs in chunks for _ in cs], dtype=int)
    chunk_fold = np.array([f for _, f, _ in chunks], dtype=int)
    sizes = [len(cs) for _, _, cs in chunks]

    # Out-of-fold scores: each fold of documents and of dev attacks is scored by a head that saw
    # neither, so the threshold and the recall it reports are not fitted to what they measure.
    oof = np.zeros(len(chunks))
    attack_fold = np.array([_fold(a.id) for a in dev], dtype=int)
    pos_row_fold = np.repeat(attack_fold, groups)
    oof_pos = np.zeros(len(dev))
    for k in (0, 1):
        keep_groups = [n for n, f in zip(groups, attack_fold) if f != k]
        w, b, _ = _fit(xp[pos_row_fold != k], keep_groups, np.vstack([xh, xo[row_fold != k]]), c)
        best = _best(_sigmoid(xo @ w + b), sizes)
        oof[chunk_fold == k] = best[chunk_fold == k]
        best_pos = _best(_sigmoid(xp @ w + b), groups)
        oof_pos[attack_fold == k] = best_pos[attack_fold == k]
    allowed = int(budget * len(chunks))
    threshold = max(0.5, float(np.sort(oof)[::-1][allowed]) + 1e-4) if len(oof) > allowed else 0.5

    w, b, kept = _fit(xp, groups, np.vstack([xh, xo]), c)
    by_source: dict[str, dict[str, int]] = {}
    for (name, _, _), s in zip(chunks, oof):
        row = by_source.setdefault(name, {"chunks": 0, "flagged_out_of_fold": 0})
        row["chunks"] += 1
        row["flagged_out_of_fold"] += int(s >= threshold)
    n_ff = int((oof >= threshold).sum())
    info = {
        "trained_on": "dev attacks vs ordinary documents (samples, shared corpus, evaldata) and hard negatives",
        "positives": kept, "negatives": len(xh) + len(xo), "C": c, "budget": budget,
        "ordinary_chunks": len(chunks), "out_of_fold_false_flags": n_ff,
        "out_of_fold_false_flag_rate": round(n_ff / max(1, len(chunks)), 5),
        "dev_recall_semantic_alone_out_of_fold": round(float(np.mean(oof_pos >= threshold)), 4),
        "dev_recall_semantic_alone": round(float(np.mean(_best(_sigmoid(xp @ w + b), groups) >= threshold)), 4),
    }
    Head(w, b, threshold, BUNDLED_E5, info).save(HEAD_FILE)
    return {"head": str(HEAD_FILE), "threshold": round(threshold, 4), **info, "by_source": by_source,
            "missing": missing, "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--shared", type=Path, default=None, help="the shared folder (corpus/, evaldata/)")
    ap.add_argument("--samples", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="SQLite embedding cache (speeds up re-training)")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="chunk-level false-flag budget")
    ap.add_argument("--C", dest="c", type=float, default=10.0, help="inverse L2 strength")
    args = ap.parse_args(argv)
    json.dump(train(args.shared, args.samples, args.cache, args.budget, args.c), sys.stdout,
              ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
