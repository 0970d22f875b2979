"""Metadata: folder convention < front matter < sidecar; validation; title defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import IngestError
from knowledge.loaders import is_sidecar, load_document
from knowledge.loaders.metadata import folder_kind, normalize_lang


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("regulations/a.md", "regulation"),
        ("site/laws/a.md", "regulation"),
        ("法规/安全.md", "regulation"),
        ("安全法规/安全.md", "regulation"),
        ("Safety/a.md", "regulation"),
        ("regulations_zh/a.md", "regulation"),
        ("manuals/pumps/a.pdf", "manual"),
        ("equipment/a.pdf", "manual"),
        ("设备手册/a.pdf", "manual"),
        ("crops/tomato/a.md", "crop"),
        ("agronomy/a.md", "crop"),
        ("种植/a.md", "crop"),
        ("misc/a.md", "other"),
        ("a.md", "other"),
        ("manuals/safety/a.md", "regulation"),  # the deepest folder wins
    ],
)
def test_folder_kind(tmp_path, relative, kind):
    assert folder_kind(tmp_path / relative, tmp_path) == kind


def test_folder_kind_ignores_folders_above_root(tmp_path):
    root = tmp_path / "manuals"
    assert folder_kind(root / "misc" / "a.md", root) == "other"
    assert folder_kind(Path("manuals/a.md"), None) == "manual"


def test_is_sidecar():
    assert is_sidecar("pump.pdf.meta.yaml") and is_sidecar(Path("a/b.md.META.JSON"))
    assert not is_sidecar("pump.pdf") and not is_sidecar("meta.yaml")


def test_sidecar_overrides_front_matter_and_folder(tmp_path, ingest):
    doc_path = _write(
        tmp_path / "manuals" / "pump.md",
        "---\ntitle: From front matter\nkind: manual\ncrop: tomato\nslug: pump\n---\n# Heading title\n\ntext\n",
    )
    _write(
        tmp_path / "manuals" / "pump.md.meta.yaml",
        "kind: regulation\ntitle: From sidecar\nlang: zh-CN\nasset: P-101\neffective_date: 2021-06-10\n"
        "supersedes: old-pump.md\nextra:\n  reviewed: 2024-01-02\n",
    )
    doc = load_document(doc_path, tmp_path, ingest)
    meta = doc.meta
    assert meta.kind == "regulation" and meta.title == "From sidecar" and meta.lang == "zh"
    assert meta.asset == "P-101" and meta.crop == "tomato" and meta.effective_date == "2021-06-10"
    assert meta.extra == {"slug": "pump", "supersedes": "old-pump.md", "reviewed": "2024-01-02"}


def test_json_sidecar_and_folder_kind(tmp_path, ingest):
    doc_path = _write(tmp_path / "crops" / "tomato.txt", "Tomato spacing is 40 cm.")
    _write(tmp_path / "crops" / "tomato.txt.meta.json", '{"crop": "tomato", "source_url": "http://x"}')
    doc = load_document(doc_path, tmp_path, ingest)
    assert doc.meta.kind == "crop" and doc.meta.crop == "tomato"
    assert doc.meta.extra == {"source_url": "http://x"}
    assert doc.meta.title == "tomato" and doc.meta.lang == "en"


@pytest.mark.parametrize(
    ("sidecar", "content", "needle"),
    [
        ("a.md.meta.yaml", "kind: brochure\n", "invalid kind 'brochure'"),
        ("a.md.meta.yaml", "title: [unclosed\n", "invalid sidecar a.md.meta.yaml"),
        ("a.md.meta.yaml", "- just\n- a list\n", "expected a mapping"),
        ("a.md.meta.json", "{not json", "invalid sidecar a.md.meta.json"),
        ("a.md.meta.yaml", "effective_date: next spring\n", "invalid effective_date"),
        ("a.md.meta.yaml", "lang: klingon\n", "invalid lang"),
        ("a.md.meta.yaml", "asset: {nested: map}\n", "invalid asset"),
    ],
)
def test_bad_sidecar_is_ingest_error(tmp_path, ingest, sidecar, content, needle):
    doc_path = _write(tmp_path / "a.md", "# Title\n\ntext\n")
    _write(tmp_path / sidecar, content)
    with pytest.raises(IngestError) as info:
        load_document(doc_path, tmp_path, ingest)
    assert needle in info.value.reason
    assert info.value.source == "a.md"


def test_invalid_kind_in_front_matter(tmp_path, ingest):
    doc_path = _write(tmp_path / "a.md", "---\nkind: poster\n---\ntext\n")
    with pytest.raises(IngestError) as info:
        load_document(doc_path, tmp_path, ingest)
    assert "invalid kind 'poster' in front matter" in info.value.reason


def test_empty_sidecar_changes_nothing(tmp_path, ingest):
    doc_path = _write(tmp_path / "regulations" / "a.md", "# 安全规定\n\n第一条 本规定适用于温室。\n")
    _write(tmp_path / "regulations" / "a.md.meta.yaml", "")
    doc = load_document(doc_path, tmp_path, ingest)
    assert doc.meta.kind == "regulation" and doc.meta.title == "安全规定" and doc.meta.lang == "zh"


def test_both_sidecars_yaml_wins_with_warning(tmp_path, ingest):
    doc_path = _write(tmp_path / "a.md", "text\n")
    _write(tmp_path / "a.md.meta.yaml", "crop: pepper\n")
    _write(tmp_path / "a.md.meta.json", '{"crop": "tomato"}')
    doc = load_document(doc_path, tmp_path, ingest)
    assert doc.meta.crop == "pepper"
    assert any("a.md.meta.json" in w for w in doc.warnings)


@pytest.mark.parametrize(("value", "lang"), [("zh", "zh"), ("zh-CN", "zh"), ("ZH_tw", "zh"), ("Chinese", "zh"),
                                              ("en", "en"), ("en-US", "en"), ("English", "en"), ("fr", None)])
def test_normalize_lang(value, lang):
    assert normalize_lang(value) == lang


def test_yaml_alias_bomb_is_refused(tmp_path, ingest):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    doc_path = _write(tmp_path / "a.md", "text\n")
    _write(tmp_path / "a.md.meta.yaml", "\n".join(levels) + "\n")
    with pytest.raises(IngestError) as info:
        load_document(doc_path, tmp_path, ingest)
    assert "too large" in info.value.reason


def test_datetime_effective_date(tmp_path, ingest):
    doc_path = _write(tmp_path / "a.md", "---\neffective_date: 2022-03-29 08:00:00\n---\ntext\n")
    assert load_document(doc_path, tmp_path, ingest).meta.effective_date == "2022-03-29"
