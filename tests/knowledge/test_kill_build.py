"""A build killed (SIGKILL) at any moment leaves the published index loadable and correct.

Each round edits the corpus, starts `onsite index build` in a child process and kills it
after a random delay spread over the whole length of a build. After every kill the live
version must verify against its manifest, its store / BM25 / FAISS must agree, and every
document it holds must be findable with the exact text of the corpus generation it was
built from."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge.index import KnowledgeIndex
from knowledge.retrieval import Retriever
from knowledge.versions import IndexFolder
from tests.knowledge.conftest_index import fake_settings

REPO = Path(__file__).resolve().parents[2]
DOCS = 40


def _write_generation(docs: Path, gen: int) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    for i in range(DOCS):
        # Half the files change each generation, so builds mix reuse and parsing.
        g = gen if i % 2 == gen % 2 else gen - 1
        (docs / f"doc{i:03d}.md").write_text(
            f"# Document {i}\n\nUnique marker zq{i}x{max(g, 0)} for document {i}. "
            f"Pump P-{100 + i} needs {i + 5} g of grease every {1000 + i} hours.\n\n"
            + "\n\n".join(f"Section {j} of document {i} talks about valve V-{j} and seal S-{j}." for j in range(8)),
            encoding="utf-8",
        )


def _start_build(home: Path, docs: Path) -> subprocess.Popen:
    env = {**os.environ, "ONSITE_HOME": str(home), "ONSITE_EMBEDDING__MODEL": "fake:64", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "assistant.cli", "index", "build", str(docs)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check_live_index(home: Path, docs: Path, generations: dict[int, int]) -> str | None:
    settings = fake_settings(home)
    folder = IndexFolder(settings.index_dir)
    name = folder.current()
    if name is None:
        return None  # killed before the first publish: nothing published, nothing broken
    assert folder.verify(name) == [], f"live version {name} fails its manifest"
    version = KnowledgeIndex(settings).version()
    rows = version.store.count()
    assert rows == version.lexical.size == version.vectors.ntotal == version.manifest["chunks"]
    docs_in = version.store.documents()
    assert len(docs_in) == version.manifest["documents"] == DOCS
    retriever = Retriever(settings)
    for rec in random.sample(docs_in, 5):
        chunks = version.store.chunks_of(rec.doc_id)
        marker = next(w for w in chunks[0].text.split() if w.startswith("zq"))
        hit = retriever.search(marker, k=1)[0]
        assert hit.chunk.source == rec.source and marker in hit.chunk.text
        i, g = (int(x) for x in marker[2:].split("x"))
        assert 0 <= g <= max(generations.values())
    return name


@pytest.mark.integration
def test_builds_killed_at_random_moments_leave_a_correct_index(tmp_path):
    rng = random.Random(1234)
    home, docs = tmp_path / "home", tmp_path / "docs"
    _write_generation(docs, 0)
    t0 = time.monotonic()
    assert _start_build(home, docs).wait(120) == 0  # a full build, also to learn its length
    full = time.monotonic() - t0
    live_names = {_check_live_index(home, docs, {0: 0})}
    kills = 0
    upper = full * 1.1  # the latest moment to kill at; shrinks when builds turn out faster (cache, less load)
    for gen in range(1, 13):
        _write_generation(docs, gen)
        proc = _start_build(home, docs)
        slept = rng.uniform(0.05, upper)
        time.sleep(slept)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        else:
            upper = max(0.1, 0.8 * slept)
        proc.wait(60)
        live_names.add(_check_live_index(home, docs, {gen: gen}))
    assert kills >= 6, f"only {kills} builds were killed in flight; the timing assumption is off"
    # After all the carnage a normal build still works, reuses the cache and cleans staging.
    assert _start_build(home, docs).wait(120) == 0
    final = _check_live_index(home, docs, {99: 12})
    assert final is not None
    folder = IndexFolder(fake_settings(home).index_dir)
    assert [p.name for p in folder.staging_dir.iterdir()] == []
    assert len(folder.versions()) <= fake_settings(home).index.keep_versions
