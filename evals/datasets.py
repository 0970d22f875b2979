"""Evaluation sets in the shared format (see shared/evaldata/FORMAT.md)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import ValidationError

if TYPE_CHECKING:
    from assistant.settings import Settings
    from knowledge.builder import BuildReport
    from knowledge.embedding import Embedder
    from knowledge.retrieval import Retriever


@dataclass
class EvalDoc:
    id: str
    title: str
    text: str
    lang: str


@dataclass
class EvalQuery:
    id: str
    question: str
    gold_ids: list[str]
    lang: str
    answer: str | None = None


def load_dataset(folder: Path) -> tuple[dict, list[EvalDoc], list[EvalQuery]]:
    folder = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise ValidationError(f"{folder} is not an evaluation set: {name} is missing (see FORMAT.md)")
    info = json.loads((folder / "dataset.json").read_text()) if (folder / "dataset.json").is_file() else {}
    docs = [EvalDoc(d["id"], d.get("title") or "", d["text"], d.get("lang") or "en") for d in _jsonl(folder / "corpus.jsonl")]
    queries = [
        EvalQuery(q["id"], q["question"], list(q["gold_ids"]), q.get("lang") or "en", q.get("answer"))
        for q in _jsonl(folder / "queries.jsonl")
    ]
    info.setdefault("name", folder.name)
    return info, docs, queries


def write_as_documents(docs: list[EvalDoc], target: Path) -> dict[str, str]:
    """Write each corpus entry as a plain-text file with a metadata sidecar, so the evaluation
    goes through the same loaders and chunker as real documents. Returns file path -> doc id."""
    target.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for i, d in enumerate(docs):
        path = target / f"doc{i:06d}.txt"
        path.write_text(d.text, encoding="utf-8")
        meta = {"title": d.title or d.text.strip().split("\n", 1)[0][:80], "lang": d.lang}
        (target / f"doc{i:06d}.txt.meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        mapping[str(path.resolve())] = d.id
    return mapping


@dataclass
class TempIndex:
    retriever: "Retriever"
    mapping: dict[str, str]  # document file path -> corpus id
    report: "BuildReport"
    index_seconds: float


@contextmanager
def temporary_index(docs: list[EvalDoc], settings: "Settings", embedder: "Embedder",
                    keep_dir: Path | None = None) -> Iterator[TempIndex]:
    """The corpus written as documents and built through the real pipeline in a throw-away data
    home, with a warmed-up retriever (index and embedder loaded outside any timing)."""
    from knowledge.builder import build_index
    from knowledge.retrieval import Retriever

    with tempfile.TemporaryDirectory(prefix="onsite-eval-") as tmp:
        work = keep_dir or Path(tmp)
        run_settings = settings.model_copy(update={"home": work / "home"})
        mapping = write_as_documents(docs, work / "docs")
        t0 = time.perf_counter()
        report = build_index([work / "docs"], run_settings, embedder=embedder)
        seconds = time.perf_counter() - t0
        retriever = Retriever(run_settings, embedder=embedder)
        retriever.search("warm up", k=1)
        yield TempIndex(retriever, mapping, report, seconds)


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
