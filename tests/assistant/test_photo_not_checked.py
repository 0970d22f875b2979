"""A question with a photo that could not be checked says so, and why, in the question's
language — extractive and model mode — through the real turn service (issue 15: "Is this part
damaged?" with a photo answered a pump table and never said the photo was not checked)."""

from __future__ import annotations

import numpy as np

from assistant.llm.base import FakeChatModel
from assistant.photo_notes import not_checked

from .test_agent import noise, run


def test_no_product_learned_is_said_in_english_extractive(make_service):
    svc = make_service()
    photo = svc.parts.uploads.save_array(noise(0), "part.png")
    _, answer = run(svc.turns.ask("Is this part damaged?", photos=[photo]))
    assert "The photo was not checked: no product has been learned yet" in answer["text"]
    assert "onsite inspect fit" in answer["text"] and answer["status"] in ("partial", "abstained")


def test_no_product_learned_is_said_in_chinese_with_a_model(make_service):
    svc = make_service(FakeChatModel(["请参见资料 [1]。"] * 3))
    photo = svc.parts.uploads.save_array(noise(1), "part.png")
    _, answer = run(svc.turns.ask("这个零件损坏了吗？", photos=[photo]))
    assert "照片未检查：还没有学习任何产品" in answer["text"], answer["text"]


def test_several_products_and_none_named_asks_which(make_service):
    svc = make_service()
    for name in ("tray", "label"):
        svc.parts.products.fit(name, [noise(i) for i in range(2, 5)])
    photo = svc.parts.uploads.save_array(noise(5), "part.png")
    _, answer = run(svc.turns.ask("Is this part damaged?", photos=[photo]))
    assert "The photo was not checked: say which product it shows (known: label, tray)" in answer["text"]


def test_an_unreadable_photo_is_said_with_the_reason(make_service):
    svc = make_service(FakeChatModel(["See the inspection result [1]."] * 3))
    svc.parts.products.fit("tray", [noise(i) for i in range(1, 5)])
    photo = svc.parts.uploads.save_array(noise(9), "tray.png")
    svc.parts.uploads.path(photo).write_bytes(b"\x89PNG\r\n\x1a\n broken on disk")
    _, answer = run(svc.turns.ask("Is this tray ok?", photos=[photo]))
    assert answer["status"] == "partial"
    assert "The photo was not checked: the photo could not be read (" in answer["text"]


def test_a_checked_photo_has_no_such_line(make_service):
    svc = make_service()
    svc.parts.products.fit("tray", [noise(i) for i in range(1, 5)])
    photo = svc.parts.uploads.save_array(noise(2), "tray.png")
    _, answer = run(svc.turns.ask("Is this tray ok?", photos=[photo]))
    assert any(r["tool"] == "inspect_image" and r["ok"] for r in answer["tool_results"])
    assert "not checked" not in answer["text"]


def test_the_lines_for_busy_and_unknown_product():
    assert not_checked("en", "inspections are busy; try again in a few seconds") == \
        "The photo was not checked: the inspector is busy; send it again in a few seconds."
    assert not_checked("zh", "unknown product 'x'; known: tray").startswith("照片未检查：未知产品")
