"""Issue 13 item 4 through the REST API: a 36 MP PNG of 120 KB, six at once, is accepted scaled
down without the server's memory growing; a DOCX zip bomb is refused at upload."""

from __future__ import annotations

import gc
import threading
import time

import psutil

from tests.knowledge.test_bounded_parsing import _docx, _paragraphs
from tests.tools.inspection.test_bounded_decode import solid_png

from .conftest import ADMIN, OPERATOR


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def test_six_36_mp_png_uploads_at_once_keep_the_server_flat(app_client):
    c = app_client(simulate_hours=0)
    bomb = solid_png(6000, 6000)
    warm = c.post("/api/v1/uploads", files={"file": ("warm.png", solid_png(40, 30), "image/png")}, headers=OPERATOR)
    assert warm.status_code == 201, warm.text
    before = _rss_mb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], psutil.Process().memory_info().rss / 2**20)
            time.sleep(0.01)

    results: list = []

    def send() -> None:
        results.append(c.post("/api/v1/uploads", files={"file": ("field.png", bomb, "image/png")}, headers=OPERATOR))

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=send) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    done.set()
    sampler.join()
    assert [r.status_code for r in results] == [201] * 6, [r.text for r in results]
    assert {(r.json()["data"]["width"], r.json()["data"]["height"]) for r in results} == {(2048, 2048)}
    after = _rss_mb()
    print(f"server RSS: before {before:.0f} MB, peak {peak[0]:.0f} MB, after {after:.0f} MB")
    assert peak[0] - before < 150 and after - before < 60


def test_docx_zip_bomb_refused_at_upload(app_client, tmp_path):
    c = app_client(simulate_hours=0)
    bomb = _docx(tmp_path / "bulletin.docx", _paragraphs(100)).read_bytes()
    r = c.post("/api/v1/knowledge/documents", files={"file": ("bulletin.docx", bomb)}, headers=ADMIN)
    assert r.status_code == 400, r.text
    assert "expands to 100.0 MB (limit 64 MB unzipped); refused as a possible zip bomb" in r.json()["msg"]
    assert c.get("/api/v1/knowledge/documents", headers=ADMIN).json()["data"] == []
