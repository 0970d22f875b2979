"""Index filters: positive keys keep matching rows, "!"-prefixed keys drop them."""

import numpy as np
import pytest

from knowledge.builder import build_index
from knowledge.embedding import FakeEmbedder
from knowledge.index import KnowledgeIndex
from knowledge.retrieval import Retriever
from tests.knowledge.conftest_index import fake_settings, write_corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("filters")
    corpus = write_corpus(tmp)
    settings = fake_settings(tmp / "home")
    emb = FakeEmbedder()
    build_index([corpus], settings, embedder=emb)
    return settings, emb


def _sources(evidence) -> set[str]:
    return {e.chunk.source.rsplit("/", 1)[-1] for e in evidence}


def test_exclude_source_by_trailing_path(built):
    settings, emb = built
    r = Retriever(settings, embedder=emb)
    everything = _sources(r.search("grease bearing 温度 检修", k=5))
    assert everything == {"pump.md", "tomato.md", "safety.md"}
    assert _sources(r.search("grease bearing 温度 检修", k=5, filters={"!source": ["pump.md"]})) == {"tomato.md", "safety.md"}
    # Same trailing-path rule as the positive key: a folder-qualified tail works too.
    assert _sources(r.search("grease bearing 温度 检修", k=5, filters={"!source": "manuals/pump.md"})) == {"tomato.md", "safety.md"}
    assert r.search("grease bearing", k=5, filters={"!source": ["pump.md", "tomato.md", "safety.md"]}) == []


def test_exclusion_complements_inclusion_and_combines_with_other_keys(built):
    settings, _ = built
    version = KnowledgeIndex(settings).version()
    keep = version.mask({"kind": "manual"})
    drop = version.mask({"!kind": "manual"})
    assert keep.any() and drop.any() and np.array_equal(keep, ~drop)
    both = version.mask({"!source": ["pump.md"], "lang": "zh"})
    assert both.sum() == (version.column("lang") == "zh").sum()  # pump.md is the only English file
    assert version.mask({"!source": []}).all()  # excluding nothing keeps everything
    assert not version.mask({"source": []}).any()


def test_exclude_doc_id(built):
    settings, emb = built
    version = KnowledgeIndex(settings).version()
    pump_doc = next(d for d, s in zip(version.column("doc_id"), version.sources) if s.endswith("pump.md"))
    r = Retriever(settings, embedder=emb)
    assert r.search("grease bearing hours", k=1, filters={"doc_id": pump_doc})[0].chunk.doc_id == pump_doc
    assert all(e.chunk.doc_id != pump_doc for e in r.search("grease bearing hours", k=5, filters={"!doc_id": [pump_doc]}))
