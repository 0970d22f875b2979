"""The header's model badge: one line (the model, or "Extracts only" / "仅摘录"), its details one
tap away (an HTML <details>), the full how-to (URL, hash) for administrators only, all escaped."""

from __future__ import annotations

import re

from tests.ui.fakes import FakeService
from ui.app import status_badge

WHY = ("model file not found: /data/models/q.gguf. Copy q.gguf (from https://example.org/q.gguf on a machine "
       "with internet) by hand — expected SHA-256: " + "ab" * 32)


def _summary(badge: str) -> str:
    return re.sub(r"<[^>]+>", "", re.search(r"<summary[^>]*>(.*?)</summary>", badge, re.S).group(1))


def _service(tmp_path, model: dict, index: dict | None = None) -> FakeService:
    service = FakeService(tmp_path / "home")
    service.readiness = lambda: {"model": model, "index": {"version": "v7"} if index is None else index}
    return service


def test_extractive_badge_is_one_short_line_with_the_reason_one_tap_away(tmp_path):
    service = _service(tmp_path, {"mode": "extractive", "reason": WHY})
    en, zh = status_badge(service, "en"), status_badge(service, "zh")
    assert _summary(en) == "Extracts only" and _summary(zh) == "仅摘录"
    assert en.startswith('<details class="onsite-badge extractive">') and "<script" not in en
    details = en.split("</summary>", 1)[1]
    assert "model file not found: q.gguf" in details and "Knowledge index: v7" in details
    assert "SHA-256" not in en and "example.org" not in en and "/data/models" not in en  # not for everyone
    assert "知识库版本：v7" in zh


def test_administrators_also_get_the_full_how_to(tmp_path):
    admin = status_badge(_service(tmp_path, {"mode": "extractive", "reason": WHY}), "en", admin=True)
    assert _summary(admin) == "Extracts only"
    assert "example.org/q.gguf" in admin and "SHA-256: " + "ab" * 32 in admin
    assert "/data/models" not in admin  # redacted like the log's copy for the page


def test_model_loading_and_missing_index_states(tmp_path):
    llm = status_badge(_service(tmp_path, {"mode": "llm", "name": "qwen2.5-1.5b-instruct-q4_k_m"}), "en")
    assert _summary(llm) == "qwen2.5-1.5b-instruct-q4_k_m" and 'class="onsite-badge llm"' in llm
    loading = status_badge(_service(tmp_path, {"mode": "loading"}), "zh")
    assert _summary(loading) == "正在加载模型…"
    none = status_badge(_service(tmp_path, {"mode": "extractive", "reason": "x"}, index={}), "en")
    assert _summary(none) == "Extracts only · No knowledge index" and "noindex" in none


def test_the_badge_escapes_what_it_shows(tmp_path):
    badge = status_badge(_service(tmp_path, {"mode": "llm", "name": "<img src=x onerror=alert(1)>"},
                                  index={"version": "<b>v</b>"}), "en")
    assert "<img" not in badge and "<b>v</b>" not in badge and "&lt;img" in badge


def test_a_failing_readiness_gives_no_badge(tmp_path):
    service = FakeService(tmp_path / "home")

    def broken():
        raise RuntimeError("down")

    service.readiness = broken
    assert status_badge(service, "en") == ""
