"""/api/v1/knowledge (admin): document uploads (types, names, sizes), background rebuilds with
progress and failures, one at a time, answering meanwhile, a failed rebuild leaving the live
index intact, status and rollback."""

from __future__ import annotations

import io
import threading
import zipfile

import pytest

from knowledge.documents import safe_document_name
from knowledge.embedding import FakeEmbedder
from knowledge.versions import IndexFolder

from .conftest import ADMIN, OPERATOR, wait_job

NOTE = ("# Sorting line SL-7 quick guide\n\n## Belt tension\n\n"
        "The conveyor belt of the sorting line SL-7 is re-tensioned every 400 operating hours. "
        "A slack belt slips on the drive drum and the cartons queue at the scanner.\n")


def upload(c, name, content, headers=ADMIN):
    return c.post("/api/v1/knowledge/documents", files={"file": (name, content)}, headers=headers)




def test_admin_only(app_client):
    c = app_client(simulate_hours=0)
    assert upload(c, "a.md", b"# A\n\ntext", OPERATOR).status_code == 403
    for path in ("/api/v1/knowledge/documents", "/api/v1/knowledge/jobs", "/api/v1/knowledge/status"):
        assert c.get(path, headers=OPERATOR).status_code == 403
        assert c.get(path).status_code == 401
    assert c.post("/api/v1/knowledge/rollback", headers=OPERATOR).status_code == 403


@pytest.mark.parametrize("given, kept", [
    ("../../etc/cron.d/evil.md", "evil.md"),
    ("C:\\Users\\op\\manual.PDF", "manual.pdf"),
    (".hidden.txt", "hidden.txt"),
    ("泵 手册 (v2).docx", "泵 手册 (v2).docx"),
    ("a\x00b;rm -rf.md", "ab_rm -rf.md"),
    ("x" * 300 + ".txt", "x" * 116 + ".txt"),
])
def test_safe_names(given, kept):
    assert safe_document_name(given) == kept


@pytest.mark.parametrize("given", ["..md", "evil.md.exe", "x", "../", "a.meta.yaml", "README.md"])
def test_refused_names(given):
    from knowledge.errors import DocumentRejectedError

    with pytest.raises(DocumentRejectedError):
        safe_document_name(given, ["README.md"])


def docx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def test_uploads_are_checked(app_client):
    c = app_client(simulate_hours=0)
    r = upload(c, "../../outside.md", NOTE.encode())
    assert r.status_code == 201 and r.json()["data"] == {"name": "outside.md", "bytes": len(NOTE.encode()),
                                                        "replaced": False, "modified": None,
                                                        "added_by": "key:ops-console",
                                                        "added_at": r.json()["data"]["added_at"]}
    assert upload(c, "outside.md", NOTE.encode()).json()["data"]["replaced"] is True
    assert upload(c, "d.docx", docx_bytes()).status_code == 201
    for name, content, status in [("x.exe", b"MZ", 415), ("x.pdf", b"hello", 415), ("x.docx", b"PK\x03\x04zz", 415),
                                  ("x.txt", b"a\x00b" * 10, 415), ("x.md", b"", 400), ("README.md", b"# r", 400)]:
        r = upload(c, name, content)
        assert r.status_code == status, (name, r.text)
        assert r.json()["code"] == status
    names = [d["name"] for d in c.get("/api/v1/knowledge/documents", headers=ADMIN).json()["data"]]
    assert names == ["d.docx", "outside.md"]
    home = c.app.state.services.settings.home
    assert not (home / "outside.md").exists() and not (home.parent / "outside.md").exists()
    assert c.delete("/api/v1/knowledge/documents/d.docx", headers=ADMIN).status_code == 200
    assert c.delete("/api/v1/knowledge/documents/d.docx", headers=ADMIN).status_code == 404


def test_rebuild_status_and_rollback(app_client):
    c = app_client(own_index=True, simulate_hours=0)
    service = c.app.state.services
    before = c.get("/api/v1/knowledge/status", headers=ADMIN).json()["data"]
    assert before["live"] == "v000001" and before["rebuild"] is None
    upload(c, "sl7-guide.md", NOTE.encode())
    upload(c, "broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n")
    r = c.post("/api/v1/knowledge/jobs", headers=ADMIN)
    assert r.status_code == 202
    job = wait_job(c, r.json()["data"]["id"])
    assert job["state"] == "done" and job["stage"] == "done" and job["version"] == "v000002", job
    assert [f["source"] for f in job["failures"]] == ["documents/broken.pdf"] and job["failures"][0]["reason"]
    assert job["documents"] == before["versions"][0]["documents"] + 1 and job["reused"] >= 1
    assert any(s.endswith("samples") for s in job["sources"])
    status = c.get("/api/v1/knowledge/status", headers=ADMIN).json()["data"]
    assert status["live"] == "v000002" and any(d["title"].startswith("Sorting line SL-7") for d in status["documents"])
    assert [j["id"] for j in c.get("/api/v1/knowledge/jobs", headers=ADMIN).json()["data"]] == [job["id"]]
    answer = c.post("/api/v1/chat", json={"question": "How often is the SL-7 conveyor belt re-tensioned?"},
                    headers=OPERATOR).json()["data"]
    assert "400 operating hours" in answer["answer"]
    assert any(s["file"] == "sl7-guide.md" for s in answer["sources"])

    r = c.post("/api/v1/knowledge/rollback", headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"] == {"live": "v000001", "previous": "v000002"}
    r = c.post("/api/v1/knowledge/rollback", headers=ADMIN)
    assert r.status_code == 409 and r.json()["data"]["error"] == "no_earlier_version"
    assert service.readiness()["index"]["version"] == "v000001"
    assert c.get("/api/v1/knowledge/jobs/job-000000000000", headers=ADMIN).status_code == 404


class GatedEmbedder(FakeEmbedder):
    """Blocks the embeddings of a rebuild (its thread) until ``gate`` is set; queries pass."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.gate = threading.Event()
        self.blocked = threading.Event()
        self.fail = fail

    def embed(self, texts):
        if threading.current_thread().name.startswith("onsite-job"):
            self.blocked.set()
            if self.fail:
                raise RuntimeError("embedder crashed")
            self.gate.wait(30)
        return super().embed(texts)


def test_one_rebuild_at_a_time_while_answering(app_client):
    embedder = GatedEmbedder()
    c = app_client(own_index=True, simulate_hours=0, embedder=embedder)
    upload(c, "sl7-guide.md", NOTE.encode())
    first = c.post("/api/v1/knowledge/jobs", headers=ADMIN).json()["data"]
    assert embedder.blocked.wait(30)
    running = c.get(f"/api/v1/knowledge/jobs/{first['id']}", headers=ADMIN).json()["data"]
    assert running["state"] == "running" and running["stage"] == "embed"
    r = c.post("/api/v1/knowledge/jobs", headers=ADMIN)
    assert r.status_code == 409 and first["id"] in r.json()["msg"]
    assert c.post("/api/v1/knowledge/rollback", headers=ADMIN).status_code == 409  # the builder lock is held
    ready = c.get("/readyz").json()["data"]
    assert ready["ready"] and ready["rebuild"] == first["id"]
    answer = c.post("/api/v1/chat", json={"question": "What bearing temperature is normal for pump P-101?"},
                    headers=OPERATOR)
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "answered"
    embedder.gate.set()
    assert wait_job(c, first["id"])["state"] == "done"


def test_failed_rebuild_leaves_the_live_index_intact(app_client):
    c = app_client(own_index=True, simulate_hours=0, embedder=GatedEmbedder(fail=True))
    upload(c, "sl7-guide.md", NOTE.encode())
    job = wait_job(c, c.post("/api/v1/knowledge/jobs", headers=ADMIN).json()["data"]["id"])
    assert job["state"] == "failed" and "embedder crashed" in job["error"] and job["version"] is None
    folder = IndexFolder(c.app.state.services.settings.index_dir)
    assert folder.current() == "v000001" and folder.verify("v000001") == [] and folder.versions() == ["v000001"]
    assert c.get("/readyz").status_code == 200
    r = c.post("/api/v1/chat", json={"question": "What bearing temperature is normal for pump P-101?"}, headers=OPERATOR)
    assert r.status_code == 200
