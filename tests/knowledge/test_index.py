"""Index builds: incremental, versioned, atomic; readers unaffected by builds."""

import threading

import pytest

from knowledge.errors import IndexBusyError, IndexMissingError
from knowledge.builder import build_index
from knowledge.embedding import FakeEmbedder
from knowledge.index import KnowledgeIndex
from knowledge.retrieval import Retriever
from knowledge.versions import IndexFolder
from tests.knowledge.conftest_index import fake_settings, write_corpus


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path)


def test_build_then_search_returns_cited_evidence(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home")
    emb = FakeEmbedder()
    report = build_index([corpus], settings, embedder=emb)
    assert report.documents == 3 and not report.failures
    ev = Retriever(settings, embedder=emb).search("bearing grease hours", k=3)
    assert ev[0].chunk.title == "Pump P-101 manual > Maintenance"
    assert ev[0].chunk.metadata["asset"] == "P-101" and ev[0].chunk.kind == "manual"
    zh = Retriever(settings, embedder=emb).search("有限空间 氧含量", k=1)
    assert zh[0].chunk.title_path[-1] == "第六条"


def test_incremental_rebuild_parses_and_embeds_only_changed_files(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home")
    emb = FakeEmbedder()
    first = build_index([corpus], settings, embedder=emb)
    assert len(first.parsed) == 3
    calls = emb.calls

    unchanged = build_index([corpus], settings, embedder=emb)
    assert unchanged.parsed == [] and unchanged.reused == 3 and unchanged.embedded == 0
    assert emb.calls == calls

    pump = corpus / "manuals" / "pump.md"
    pump.write_text(pump.read_text().replace("15 g", "20 g"), encoding="utf-8")
    changed = build_index([corpus], settings, embedder=emb)
    assert changed.parsed == [str(pump)] and changed.reused == 2
    assert changed.embedded == 1  # only the edited chunk's text is new
    ev = Retriever(settings, embedder=emb).search("grease drive-end bearing", k=1)
    assert "20 g" in ev[0].chunk.text

    (corpus / "crops" / "tomato.md").unlink()
    removed = build_index(None, settings, embedder=emb)  # no paths: the live version's sources
    assert removed.removed == [str(corpus / "crops" / "tomato.md")] and removed.documents == 2
    assert all(e.chunk.kind != "crop" for e in Retriever(settings, embedder=emb).search("灰霉病 湿度", k=5))


def test_filters_by_kind_and_metadata(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home")
    emb = FakeEmbedder()
    build_index([corpus], settings, embedder=emb)
    r = Retriever(settings, embedder=emb)
    assert {e.chunk.kind for e in r.search("温度 湿度 检修", k=5, filters={"kind": "regulation"})} == {"regulation"}
    assert [e.chunk.metadata.get("crop") for e in r.search("温度", k=5, filters={"crop": "tomato"})] == ["tomato"]
    assert r.search("温度", k=5, filters={"asset": "P-999"}) == []


def test_versions_rollback_and_pruning(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home", index={"keep_versions": 2})
    emb = FakeEmbedder()
    folder = IndexFolder(settings.index_dir)
    build_index([corpus], settings, embedder=emb)
    (corpus / "manuals" / "pump.md").unlink()
    build_index([corpus], settings, embedder=emb)
    assert folder.current() == "v000002"
    index = KnowledgeIndex(settings)
    assert index.version().manifest["documents"] == 2
    assert folder.rollback() == "v000001"
    assert index.version().manifest["documents"] == 3  # readers follow CURRENT
    build_index([corpus], settings, embedder=emb)
    build_index([corpus], settings, embedder=emb)
    assert len(folder.versions()) == 2
    assert folder.current() == folder.versions()[-1]


def test_status_reports_documents_and_failed_files(tmp_path, corpus):
    (corpus / "manuals" / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    settings = fake_settings(tmp_path / "home")
    report = build_index([corpus], settings, embedder=FakeEmbedder())
    assert list(report.failures) == [str(corpus / "manuals" / "broken.pdf")]
    status = KnowledgeIndex(settings).status()
    assert status["live"] == "v000001" and len(status["documents"]) == 3
    assert status["failures"][0]["source"].endswith("broken.pdf") and status["failures"][0]["reason"]


def test_no_index_yet_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissingError, match="onsite index build"):
        KnowledgeIndex(fake_settings(tmp_path / "home")).version()


def test_one_builder_at_a_time(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home")
    with IndexFolder(settings.index_dir).build_lock():
        with pytest.raises(IndexBusyError):
            build_index([corpus], settings, embedder=FakeEmbedder())


def test_readers_keep_answering_from_the_old_version_during_a_build(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home")
    emb = FakeEmbedder()
    build_index([corpus], settings, embedder=emb)
    retriever = Retriever(settings, embedder=emb)
    before = retriever.index.version()
    rows_before = before.store.count()
    for i in range(40):
        (corpus / "manuals" / f"extra{i}.md").write_text(f"# Extra {i}\n\nValve V-{i} is checked weekly.\n")
    answers, errors = [], []

    def read():
        while not done.is_set():
            try:
                answers.append(retriever.search("bearing grease", k=1)[0].chunk.title)
            except Exception as exc:  # noqa: BLE001 - the test collects any failure
                errors.append(exc)

    done = threading.Event()
    reader = threading.Thread(target=read)
    reader.start()
    build_index([corpus], settings, embedder=emb)
    done.set()
    reader.join()
    assert not errors and answers and set(answers) == {"Pump P-101 manual > Maintenance"}
    # the old version object is still intact and usable by a reader that holds it
    assert before.store.count() == rows_before == before.lexical.size == before.vectors.ntotal
    assert retriever.index.version().manifest["documents"] == 43


def test_large_indexes_switch_to_hnsw_and_still_filter(tmp_path, corpus):
    settings = fake_settings(tmp_path / "home", index={"hnsw_threshold": 2})
    emb = FakeEmbedder(languages=["en"])
    build_index([corpus], settings, embedder=emb)
    r = Retriever(settings, embedder=emb)
    assert type(r.index.version().vectors).__name__ == "IndexHNSWFlat"
    ev = r.search("grease bearing hours", k=2, filters={"kind": "manual"})
    assert ev and all(e.chunk.kind == "manual" for e in ev) and ev[0].dense is not None
