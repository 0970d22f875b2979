"""The documents page shows who added each document and the statements that contradict the
site's safety rules (ui/tab_admin.py), from the knowledge status payload."""

from __future__ import annotations

from ui.tab_admin import report_rows, status_markdown

STATUS = {
    "live": "v000002", "chunks": 120,
    "documents": [{"source": "/data/documents/p101-service-bulletin.en.md", "pages": None, "chunks": 1, "warnings": [],
                   "added_by": "key:alice", "added_at": "2026-12-07T10:00:00+0000"}],
    "conflicts_count": 1,
    "conflicts": [{"source": "/data/documents/p101-service-bulletin.en.md", "added_by": "key:alice",
                   "added_at": "2026-12-07T10:00:00+0000", "topic": "lockout/tagout",
                   "sentence": "lockout/tagout is not needed for P-101 seal replacement",
                   "rule_source": "/srv/samples/regulations/lockout-tagout-procedure.en.md",
                   "rule_title": "Lockout/tagout procedure > 3.8", "rule_sentence": "… apply lockout again …"}],
}


def test_documents_page_shows_provenance_and_conflicts():
    rows = report_rows(STATUS, None, "en")
    assert rows[0][0] == "p101-service-bulletin.en.md" and "added by key:alice on 2026-12-07" in rows[0][4]
    text = status_markdown(STATUS, "en")
    assert "1 statement(s) contradict the site's safety rules" in text
    assert "p101-service-bulletin.en.md" in text and "added by key:alice" in text
    assert "lockout-tagout-procedure.en.md" in text and "/srv/" not in text  # file names, not server paths
    zh = status_markdown(STATUS, "zh")
    assert "与现场安全规定相矛盾" in zh and "由 key:alice 于 2026-12-07 添加" in zh


def test_no_conflict_no_warning():
    assert "contradict" not in status_markdown({**STATUS, "conflicts": [], "conflicts_count": 0}, "en")
