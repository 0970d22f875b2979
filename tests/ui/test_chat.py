"""Events of a turn folded into chat messages: steps, streaming, retries, badges, escaping."""

from __future__ import annotations

from assistant.types import Event
from ui.chat import TurnView, call_title, error_message, escape_md, pending_markdown, user_messages, with_tables

SOURCES = [
    {"n": 1, "kind": "document", "title": "Pump > Maintenance", "text": "Check the seals weekly.",
     "source": "/docs/pump.pdf", "page": 3},
    {"n": 2, "kind": "tool", "title": "sensor_latest(target=gh2)", "text": "gh2 24.1 °C"},
]


def _done(**kw):
    answer = {"text": "Check the seals weekly [1].", "status": "answered", "mode": "llm", "sources": SOURCES,
              "cited": [1], "pending": [], "thread_id": "t1", "mode_reason": None}
    return Event("done", {**answer, **kw})


def _fold(events, lang="en") -> TurnView:
    view = TurnView(lang)
    for ev in events:
        view.apply(ev)
    return view


def test_escape_md_shows_html_as_text_and_never_loads_images():
    out = escape_md('<script>alert(1)</script> <img src="http://x/y.png"> ![a](http://evil/p.png) \\![b][r] ! [c]')
    assert "<" not in out and ">" not in out
    assert "&lt;script&gt;" in out
    assert "![" not in out  # neither form of image survives
    assert "&#33;[a](http://evil/p.png)" in out and "&#33;[b][r]" in out
    assert "! [c]" in out  # not an image: left alone
    assert escape_md(None) == ""


def test_steps_stream_then_the_answer():
    view = TurnView("en")
    view.apply(Event("status", {"stage": "route"}))
    view.apply(Event("tool", {"phase": "started", "tool": "sensor_latest", "args": {"target": "gh2"}}))
    msgs = view.messages()
    assert [m["metadata"]["title"] for m in msgs] == ["Planning", "Tool · sensor_latest(target=gh2)"]
    assert all(m["metadata"]["status"] == "pending" for m in msgs)
    view.apply(Event("tool", {"phase": "finished", "tool": "sensor_latest", "args": {"target": "gh2"}, "ok": True,
                              "summary": "gh2 <b>24.1</b> °C", "data": {}}))
    view.apply(Event("status", {"stage": "retrieve"}))
    view.apply(Event("sources", {"sources": SOURCES}))
    view.apply(Event("token", {"text": "Check the "}))
    msgs = view.messages()
    assert msgs[0]["metadata"] == {"title": "Searching the documents", "status": "done", "id": "step-0"}
    assert msgs[1]["content"] == "gh2 &lt;b&gt;24.1&lt;/b&gt; °C" and msgs[1]["metadata"]["status"] == "done"
    assert msgs[-1] == {"role": "assistant", "content": "Check the", "metadata": {}}
    assert view.sources == SOURCES and not view.finished
    view.apply(Event("token", {"text": "seals"}))
    view.apply(_done())
    assert view.finished
    assert view.messages()[-1]["content"] == "Check the seals weekly [1]."  # the final text wins, no badge


def test_a_failed_check_with_retry_replaces_the_streamed_draft():
    view = _fold([Event("token", {"text": "Pressure is 99 bar [1]."}),
                  Event("check", {"name": "numbers", "ok": False, "detail": "99 is not in the sources", "retry": True}),
                  Event("token", {"text": "Pressure is 10 bar [1]."})])
    assert view.text == "Pressure is 10 bar [1]."
    revised = [m for m in view.messages() if m["metadata"].get("title", "").startswith("Draft replaced")]
    assert revised and "99 is not in the sources" in revised[0]["content"]


def test_failed_checks_without_retry_are_listed_once_at_the_end():
    view = _fold([Event("check", {"name": "citations", "ok": False, "detail": "[7] is not a source", "retry": False}),
                  Event("check", {"name": "citations", "ok": False, "detail": "again", "retry": False}),
                  Event("check", {"name": "numbers", "ok": True, "detail": ""}), _done()])
    checks = [m for m in view.messages() if m["metadata"].get("title") == "Checks"]
    assert len(checks) == 1 and "citations" in checks[0]["content"] and "numbers" not in checks[0]["content"]


def test_extracts_abstentions_and_partial_answers_are_labelled():
    extract = _fold([_done(mode="extractive", mode_reason="no model file")]).answer_markdown()
    assert extract.startswith("> **Extract from the documents** (no language model: no model file)")
    # the extract's own label line goes (the badge says it); each quoted statement is a list item
    labelled = _fold([_done(mode="extractive", mode_reason="no model file", text=(
        "Extract from the documents, no language model wrote it (no model file):\n"
        "Interval: Annually; LOTO: Yes [1] Replace the seal when it leaks. [2]"))]).answer_markdown()
    assert labelled.count("no model file") == 1 and "no language model wrote it" not in labelled
    assert labelled.endswith("- Interval: Annually; LOTO: Yes [1]\n- Replace the seal when it leaks. [2]"), labelled
    zh_lines = _fold([_done(mode="extractive", mode_reason="no model file", text=(
        "以下为文档原文摘录，非语言模型生成：\n水池液位高时属正常现象。 [1]位号: PT-101 [2]。"))], lang="zh").answer_markdown()
    assert "非语言模型生成" not in zh_lines and "no model file" not in zh_lines  # no English inside a Chinese answer
    assert zh_lines.endswith("- 水池液位高时属正常现象。 [1]\n- 位号: PT-101 [2]。"), zh_lines
    abstained = _fold([_done(status="abstained", text="I could not find this in the documents.")]).answer_markdown()
    assert "**Not answered**" in abstained and "Extract" not in abstained
    partial = _fold([_done(status="partial")]).answer_markdown()
    assert "**Partial answer**" in partial
    zh = _fold([_done(mode="extractive")], lang="zh").answer_markdown()
    assert "文档摘录" in zh


def test_pending_approval_shows_a_badge_and_what_waits():
    pending = [{"kind": "approval", "tool": "create_work_order",
                "args": {"asset": "P-101", "priority": "high", "problem": "seal <leaks>", "evidence": ["[1] manual"]}}]
    view = _fold([Event("approval", {"thread_id": "t1", "pending": pending}), _done(pending=pending)])
    assert "Waiting for approval" in view.answer_markdown()
    md = pending_markdown(view.pending, "en")
    assert "create_work_order" in md and "P-101 · high · seal &lt;leaks&gt;" in md and "[1] manual" in md
    assert pending_markdown([], "en") == ""


def test_approval_results_are_logged_on_the_step():
    view = _fold([Event("tool", {"phase": "finished", "tool": "create_work_order", "args": {"asset": "P-101"},
                                 "ok": True, "summary": "WO-1 created", "approval": {"approved": True, "by": "Wang"}}),
                  _done()])
    step = view.messages()[0]
    assert step["metadata"]["log"] == "approved by Wang" and step["content"] == "WO-1 created"


def test_an_inspection_step_carries_its_annotated_photo():
    view = _fold([Event("tool", {"phase": "finished", "tool": "inspect_image", "args": {"image_id": "a" * 32},
                                 "ok": True, "summary": "label: DEFECTIVE", "data": {"annotated_image_id": "b" * 32}}),
                  _done()])
    shown = view.messages(image=lambda upload_id: f"<image {upload_id}>")
    assert shown[1]["content"] == f"<image {'b' * 32}>"
    assert len(view.messages()) == 2  # without an image renderer the photo is left out


def test_errors_end_the_turn_with_a_message():
    view = _fold([Event("status", {"stage": "route"}), Event("error", {"message": "the model <crashed>"})])
    assert view.finished and view.steps[0].status == "done"
    assert view.messages()[-1]["content"] == "Error: the model &lt;crashed&gt;"
    assert view.messages()[0]["metadata"]["title"] == "Planning"


def test_events_as_dicts_are_accepted():
    view = _fold([{"type": "token", "text": "hi"}, {"type": "done", **_done().data}])
    assert view.answer["thread_id"] == "t1"


def test_user_messages_escape_the_question_and_add_photos():
    msgs = user_messages(" <b>hello</b> ", ["/tmp/gradio/x/photo.jpg"])
    assert msgs == [{"role": "user", "content": "&lt;b&gt;hello&lt;/b&gt;"},
                    {"role": "user", "content": {"path": "/tmp/gradio/x/photo.jpg"}}]
    assert user_messages("", []) == []


def test_error_message_for_a_busy_model_says_when_to_retry():
    from assistant.llm.base import ModelBusyError
    from assistant.errors import ValidationError

    assert error_message(ModelBusyError("busy", retry_after_s=5.0), "en") == \
        "The assistant is busy with other questions; try again in 5 s."
    assert "5 秒" in error_message(ModelBusyError("busy", retry_after_s=5.0), "zh")
    assert error_message(ValidationError("the question is <empty>"), "en") == "Error: the question is &lt;empty&gt;"


def test_call_title_hides_evidence_and_shortens_long_arguments():
    title = call_title("create_work_order", {"asset": "P-101", "problem": "x" * 100, "evidence": ["a"], "n": 3})
    assert title.startswith("create_work_order(asset=P-101, problem=xxx") and "evidence" not in title
    assert "…" in title and title.endswith(", n=3)")


def test_table_rows_in_an_answer_become_a_table():
    """A model (or a quoted chunk) writes table rows without the header separator: shown as raw
    "| a | b |" lines they read as bar soup. The answer shows them as a Markdown table, the
    citation after the last bar kept in the last cell, the text around it as it was."""
    text = ("The limits are:\n| Parameter | Normal range | Alarm |\n| Vibration | up to 2.8 mm/s | 4.5 mm/s | [2]\n"
            "| Bearing temperature | up to 70 °C | 80 °C |\nStop at the trip value [2].")
    md = _fold([_done(text=text, cited=[2])]).messages()[-1]["content"]
    assert ("The limits are:\n\n| Parameter | Normal range | Alarm |\n|---|---|---|\n"
            "| Vibration | up to 2.8 mm/s | 4.5 mm/s [2] |\n| Bearing temperature | up to 70 °C | 80 °C |\n\n"
            "Stop at the trip value [2].") in md
    # a table that already has its separator is left as written; a lone bar is not a table
    assert with_tables("| A | B |\n|:--|--:|\n| 1 | 2 |") == "| A | B |\n|---|---|\n| 1 | 2 |"
    assert with_tables("pressure | flow") == "pressure | flow"
    assert with_tables("| a | b |\n| c |") == "| a | b |\n|---|---|\n| c |  |"  # short rows padded


def test_a_sensor_line_in_a_chinese_answer_is_chinese():
    line = "GH-2-TEMP: the reading is within limits (taken just now) — GH-2-TEMP 21.2 °C (normal 20–24, day)"
    ev = Event("tool", {"tool": "sensor_latest", "args": {"target": "GH-2-TEMP"}, "phase": "done", "ok": True,
                        "summary": line})
    view = _fold([ev, _done(text=f"{line} [2]", cited=[2])], lang="zh")
    step, answer = view.messages()[0]["content"], view.messages()[-1]["content"]
    assert step.startswith("GH-2-TEMP：读数在正常范围内（刚刚读取）") and "（正常 20–24，白天）" in step
    assert "GH-2-TEMP：读数在正常范围内（刚刚读取）" in answer and answer.rstrip().endswith("[2]")
    english = _fold([ev, _done(text=f"{line} [2]", cited=[2])], lang="en")
    assert line in english.messages()[-1]["content"] and english.messages()[0]["content"] == line


def test_the_evidence_of_a_pending_order_is_in_the_pages_language():
    pending = [{"tool": "create_work_order", "args": {"asset": "VT-101", "priority": "high", "problem": "vibration",
                                                     "evidence": ["sensor_latest: VT-101: 1 sensor, 1 to look at — "
                                                                  "P-101 stopped (its readings are not judged)"]}}]
    assert "VT-101：1 个传感器，1 项需要关注 — P-101 已停机（其读数不作判断）" in pending_markdown(pending, "zh")
    assert "VT-101: 1 sensor, 1 to look at" in pending_markdown(pending, "en")
