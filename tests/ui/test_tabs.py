"""The page's event handlers against a stand-in service: what each tab sends to the service and
what it shows back."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from assistant.llm.base import ModelBusyError
from assistant.types import Event
from tests.ui.fakes import FakeJobs, FakeService
from ui.sources_panel import KnownSources, PageImages
from ui.tab_admin import AdminHandlers
from ui.tab_chat import ChatHandlers, scope_choices
from ui.tab_inspect import InspectHandlers, verdict_markdown
from ui.tab_orders import OrderHandlers
from ui.tab_sensors import SensorHandlers, series_rows

SOURCES = [{"n": 1, "kind": "document", "title": "Pump > Seals", "text": "Check the seals weekly.",
            "source": "/d/pump.md"}]


def _turn(text="Check the seals weekly [1].", **answer):
    return [Event("status", {"stage": "retrieve"}), Event("sources", {"sources": SOURCES}),
            Event("token", {"text": text}),
            Event("done", {"text": text, "status": "answered", "mode": "extractive", "mode_reason": "no model",
                           "sources": SOURCES, "cited": [1], "pending": [], "thread_id": "thread-1", **answer})]


def _png(path, size=(64, 48), fmt="PNG"):
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path, format=fmt)
    return str(path)


@pytest.fixture
def service(tmp_path):
    return FakeService(tmp_path / "home")


def _chat(service, root=None):
    return ChatHandlers(service, PageImages(KnownSources(service)), upload_root=root or service.settings.home.parent)


def _quiet(gen):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(gen)


def test_a_question_streams_and_fills_the_panel(service):
    service.scripted.append(_turn())
    outs = _quiet(_chat(service).ask({"text": "How often are seals checked?", "files": []}, [], None, "GH-1", "", "en"))
    assert service.asked[0]["question"] == "How often are seals checked?"
    assert service.asked[0]["scope"] == {"zone": "GH-1", "asset": None} and service.asked[0]["user"] == "chat-page"
    first, last = outs[0], outs[-1]
    assert first[0] == [{"role": "user", "content": "How often are seals checked?"}]
    assert first[1]["value"] == {"text": "", "files": []}  # the box is cleared at once
    history, _, thread, sources_md, pick, detail, page_img, approval_box, approval_md, turn = last
    assert thread == service.asked[0]["thread_id"]  # the page keeps the id it made
    assert "Extract from the documents" in history[-1]["content"] and "[1]" in history[-1]["content"]
    assert "**[1]**" in sources_md and "cited" in sources_md
    assert pick["choices"] == [("[1] Pump > Seals (pump.md) · cited", 1)]
    assert approval_box["visible"] is False and turn["sources"] == SOURCES
    assert len(outs) >= 3  # the steps were shown before the answer


def test_the_conversation_id_is_made_before_the_turn(service):
    service.scripted.append(_turn()[:2])  # a turn that ends without an answer
    outs = _quiet(_chat(service).ask({"text": "hi", "files": []}, [], None, "", "", "en"))
    thread = service.asked[0]["thread_id"]
    assert len(thread) == 32 and outs[0][2] == thread == outs[-1][2]
    assert outs[-1][0][-1]["content"] == "Error: Stopped."
    service.scripted.append(_turn())
    _quiet(_chat(service).ask({"text": "and then?", "files": []}, [], thread, "", "", "en"))
    assert service.asked[1]["thread_id"] == thread


def test_stopping_a_turn_stops_the_service(service):
    closed, seen = [], {}

    class Events:
        def __init__(self):
            self.it = iter(_turn())

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.it)

        def close(self):
            closed.append(True)

    def ask(question, **kw):
        seen.update(kw)
        return Events()

    service.ask = ask
    gen = _chat(service).ask({"text": "hi", "files": []}, [], None, "", "", "en")
    next(gen), next(gen)  # the question, then the first step
    gen.close()  # what Gradio does when Stop is pressed
    assert closed == [True] and seen["cancel"].is_set()


def test_an_empty_question_asks_nothing(service):
    outs = _quiet(_chat(service).ask({"text": "  ", "files": []}, [], None, "", "", "en"))
    assert service.asked == [] and outs[-1][0] == []


def test_a_busy_assistant_says_so_in_the_chat(service):
    def busy(*a, **k):
        raise ModelBusyError("busy", retry_after_s=5.0)

    service.ask = busy
    outs = _quiet(_chat(service).ask({"text": "hello", "files": []}, [], None, "", "", "zh"))
    assert outs[-1][0][-1] == {"role": "assistant", "content": "助手正忙，请 5 秒后重试。"}


def test_photos_are_stored_and_passed_by_id(service, tmp_path):
    service.scripted.append(_turn())
    jpg, webp = _png(tmp_path / "a.jpg", fmt="JPEG"), _png(tmp_path / "b.webp", fmt="WEBP")
    outs = _quiet(_chat(service).ask({"text": "", "files": [jpg, {"path": webp}]}, [], None, "", "", "en"))
    asked = service.asked[0]
    assert asked["question"] == "Inspect this photo." and len(asked["photos"]) == 2
    assert service.uploads.path(asked["photos"][1]).suffix == ".png"  # WebP from a camera, stored as PNG
    assert {"role": "user", "content": {"path": jpg}} in outs[-1][0]


def test_files_that_were_not_uploaded_are_never_read(service, tmp_path):
    root = tmp_path / "uploads"
    root.mkdir()
    outside = _png(tmp_path / "secret.png")
    sneaky = str(root / ".." / "secret.png")
    outs = _quiet(_chat(service, root).ask({"text": "look", "files": [outside]}, [], None, "", "", "en"))
    assert service.asked == [] and outs[-1][0][-1]["content"] == "Error: that file was not uploaded from this page"
    assert InspectHandlers(service, upload_root=root).inspect(sneaky, "label", "en")[1].startswith("Error: ")
    assert "Refused secret.png" in AdminHandlers(service, upload_root=root).save([outside], "en")
    assert service.documents == {}
    service.scripted.append(_turn())
    _quiet(_chat(service, root).ask({"text": "", "files": [_png(root / "ok.png")]}, [], None, "", "", "en"))
    assert len(service.asked) == 1 and len(service.asked[0]["photos"]) == 1


def test_approval_needs_a_name_and_a_rejection_a_reason(service):
    chat = _chat(service)
    assert _quiet(chat.approve([], "thread-1", " ", "", "en"))[-1][0] == []
    assert _quiet(chat.reject([], "thread-1", "Wang", "", "en"))[-1][0] == []
    assert service.resumed == []
    service.scripted.append(_turn(text="Work order WO-1 proposed."))
    outs = _quiet(chat.approve([], "thread-1", "Wang", "", "en"))
    thread, decision, user = service.resumed[0]
    assert thread == "thread-1" and decision.approved and decision.by == "Wang" and user == "Wang"
    assert decision.reason == "approved on the chat page"
    assert "WO-1" in outs[-1][0][-1]["content"]


def test_opening_a_source_shows_its_passage(service):
    detail, image = _chat(service).open_source(1, {"sources": SOURCES}, "en")
    assert detail.startswith("#### [1] Pump &gt; Seals") and image["visible"] is False
    assert _chat(service).open_source(5, {"sources": SOURCES}, "en")[0] == ""


def test_a_reloaded_page_gets_its_conversation_back(service):
    service.histories["t1"] = [{"role": "user", "content": "<b>hi</b>"}, {"role": "assistant", "content": "Hello [1]."}]
    service.waiting["t1"] = [{"tool": "create_work_order", "args": {"asset": "P-101"}}]
    chatbot, thread, box, md = _chat(service).restore("t1", "en")
    assert chatbot == [{"role": "user", "content": "&lt;b&gt;hi&lt;/b&gt;"}, {"role": "assistant", "content": "Hello [1]."}]
    assert thread == "t1" and box["visible"] is True and "create_work_order" in md
    assert _chat(service).restore("unknown", "en")[:2] == ([], None)
    assert _chat(service).restore("", "en")[:2] == ([], None)


def test_new_conversation_clears_everything(service):
    out = _chat(service).new_conversation("zh")
    assert out[0] == [] and out[1] is None and "来源" in out[2]


def test_scope_choices_name_zones(service):
    choices = scope_choices(service.site.zones, "zh")
    assert choices[0] == ("全厂", "") and all(v for _, v in choices[1:])


def test_inspection_shows_the_verdict_and_the_annotated_photo(service, tmp_path):
    photo = _png(tmp_path / "p.png")
    h = InspectHandlers(service, upload_root=tmp_path)
    assert h.inspect(None, "label", "en") == (None, "Take or choose a photo first.")
    service.inspection_result = {"verdict": "defective", "score": 2.5, "threshold": 1.5,
                          "defects": [{"box": [1, 2, 30, 40], "score": 2.5, "class": "anomaly"}]}
    image, md = h.inspect(photo, "label", "en")
    assert image.shape == (48, 64, 3)
    assert md.startswith("## DEFECTIVE") and "anomaly at (1, 2)–(30, 40)" in md
    assert verdict_markdown({"verdict": "good", "score": 0.5, "threshold": 1.0}, "zh").startswith("## 合格")
    service.products = []
    assert h.refresh("en")[1].startswith("No product")
    assert h.inspect(photo, None, "en")[1].startswith("No product")


def test_a_refused_photo_is_a_message(service, tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    image, md = InspectHandlers(service, upload_root=tmp_path).inspect(str(bad), "label", "en")
    assert image is None and md.startswith("Error: ")


def test_sensor_plot_has_the_readings_and_the_limits(service):
    sensor = service.site.sensors[0].id
    plot, summary = SensorHandlers(service, service.site).show(sensor, "6h", "en")
    frame = plot["value"]
    assert set(frame["series"]) >= {"value"} and len(frame[frame["series"] == "value"]) == 3
    limits = service.site.limits_for(sensor, service.now())
    if limits is not None:  # the sample's first sensor has limits: they are drawn
        assert {"low limit", "high limit"} & set(frame["series"])
    assert "latest **22" in summary and "Limits:" in summary
    empty, msg = SensorHandlers(service, service.site).show(None, "6h", "en")
    assert len(empty["value"]) == 0 and msg == ""


def test_series_rows_follow_day_and_night_limits(service):
    sensor = next(s for s in service.site.sensors if service.site.limit_set(s) is not None)
    day = service.site.limits_for(sensor.id, service.now())
    series = {"id": sensor.id, "points": [{"ts": "2025-06-01T03:00:00+08:00", "mean": 17.0},
                                          {"ts": "2025-06-01T13:00:00+08:00", "mean": 24.0},
                                          {"ts": "2025-06-01T14:00:00+08:00", "mean": None}]}
    rows = series_rows(series, service.site, "zh")
    assert [r["value"] for r in rows if r["series"] == "读数"] == [17.0, 24.0]
    assert day is not None and any(r["series"] in ("下限", "上限") for r in rows)


def test_work_orders_are_listed_and_decided(service):
    h = OrderHandlers(service)
    table, pick, msg = h.refresh("en")
    assert list(table["value"].iloc[0])[:3] == ["WO-1", "P-101", "high"] and pick["value"] == "WO-1"
    assert h.reject("WO-1", "Wang", "", "en")[2] == "Give a reason for the rejection."
    assert h.approve(None, "Wang", "", "en")[2] == "Choose a work order first."
    assert h.approve("WO-1", "", "", "en")[2] == "Enter your name before deciding."
    table, pick, msg = h.approve("WO-1", "Wang", "", "en")
    assert service.orders[0]["status"] == "open" and service.orders[0]["decided_by"] == "Wang"
    assert "WO-1 is now **open** (Wang)" in msg and len(table["value"]) == 0 and pick["choices"] == []


def test_documents_are_saved_and_refused_one_by_one(service, tmp_path):
    good, bad = tmp_path / "notes.md", tmp_path / "tool.exe"
    good.write_text("# Notes")
    bad.write_bytes(b"MZ")
    msg = AdminHandlers(service, upload_root=tmp_path).save([str(good), str(bad)], "en")
    assert "Saved 1 file(s): notes.md" in msg and "Refused tool.exe" in msg and service.documents == {"notes.md": b"# Notes"}
    assert AdminHandlers(service).save([], "en") == "Choose files first."


def test_rebuild_follows_the_job_and_reports_each_file(service):
    service.knowledge_jobs = FakeJobs(states=[
        {"id": "job-1", "state": "running", "stage": "parse", "done": 1, "total": 3, "failures": []},
        {"id": "job-1", "state": "done", "stage": "done", "done": 2, "total": 3, "version": "v2",
         "failures": [{"source": "docs/bad.pdf", "reason": "encrypted"}]},
    ])
    outs = _quiet(AdminHandlers(service, poll_s=0).rebuild("en", progress=lambda *a, **k: None))
    assert outs[0][0] == "Rebuilding: queued 0/?" and outs[1][0] == "Rebuilding: parse 1/3"
    msg, table, line = outs[-1]
    assert msg == "Index **v2** is live." and line.startswith("Knowledge index: v1")
    rows = table.values.tolist()
    assert rows[0][:2] == ["a.md", "indexed"] and rows[-1] == ["bad.pdf", "skipped", "", 0, "encrypted"]
    assert rows[0][2] == "—"  # a Markdown file has no pages: said, not left blank


def test_the_pages_column_counts_a_pdfs_pages_and_says_none_for_text(service):
    """The Documents tab's Pages column was empty for every file: a PDF shows its page count
    from the index record, a text format "—"."""
    service.status = {**service.status, "documents": [
        {"source": "/x/manual.pdf", "pages": 12, "chunks": 40, "warnings": []},
        {"source": "/x/notes.md", "pages": None, "chunks": 3, "warnings": []},
        {"source": "/x/sop.docx", "chunks": 5, "warnings": []}]}
    table, _ = AdminHandlers(service).refresh("en")
    assert [r[:3] for r in table.values.tolist()][:3] == [["manual.pdf", "indexed", "12"],
                                                          ["notes.md", "indexed", "—"], ["sop.docx", "indexed", "—"]]


def test_rollback(service):
    msg, table, line = AdminHandlers(service).rollback("zh")
    assert msg == "已回滚：**v0** 已生效。"


def test_the_status_line_gives_the_first_sentence_of_why_there_is_no_model(tmp_path):
    from ui.app import status_markdown

    service = FakeService(tmp_path / "home")
    why = ("model file not found: /data/models/q.gguf. Copy q.gguf (from https://example.org/q.gguf on a machine "
           "with internet) by hand — expected SHA-256: " + "ab" * 32)
    service.readiness = lambda: {"model": {"mode": "extractive", "reason": why}, "index": {"version": "v1"}}
    line = status_markdown(service, "en")
    assert "model file not found: q.gguf" in line and "SHA-256" not in line and "example.org" not in line
    assert "/data/models" not in line  # the file's name, not the server's folders


def test_work_order_times_are_a_local_date_and_minute_not_an_epoch(service):
    """``created_at`` is seconds since 1970 in the store: the page shows "2023-11-14 22:13"."""
    import re
    import time

    table, _, _ = OrderHandlers(service).refresh("en")
    created = table["value"].iloc[0].iloc[-1]
    assert created == time.strftime("%Y-%m-%d %H:%M", time.localtime(service.orders[0]["created_at"]))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", created) and "1700000000" not in created
    service.orders[0]["created_at"] = "not a time"
    assert OrderHandlers(service).refresh("zh")[0]["value"].iloc[0].iloc[-1] == ""


def test_sensor_status_words_and_times_follow_the_language(service):
    """The sensor summary showed "normal" on a Chinese page and the raw ISO time."""
    from ui.tab_sensors import status_words, summary_markdown, when

    sensor = service.site.sensors[0].id
    _, zh = SensorHandlers(service, service.site).show(sensor, "6h", "zh")
    assert "· 正常 ·" in zh and "2025-06-01 12:00" in zh and "T12:00:00" not in zh and "normal" not in zh
    _, en = SensorHandlers(service, service.site).show(sensor, "6h", "en")
    assert "· normal ·" in en and "at 2025-06-01 12:00 ·" in en
    alarm = {"status": "alarm", "direction": "high", "stale": True}
    assert status_words(alarm, "zh") == "报警（偏高） · 数据过时" and status_words(alarm, "en") == "alarm (high) · stale"
    assert status_words({"status": "no_data"}, "zh") == "无数据" and status_words({"status": "bad_quality"}, "en") == "bad quality"
    assert status_words({"status": "shutdown"}, "en") == "shutdown"  # a site's own trip word, as it is
    assert when("2025-06-01T03:07:59+08:00") == "2025-06-01 03:07" and when("yesterday") == "yesterday"
    md = summary_markdown({"value": 1.5, "ts": "2025-06-01T03:07:00+08:00", "status": "stopped"},
                          {"id": "P-101-RUN", "name": "Run", "unit": ""}, 4, "zh")
    assert "设备已停机" in md and "2025-06-01 03:07" in md
