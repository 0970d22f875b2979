"""The daily advice composed from a real sensor store, a real (fake-embedder) index of the sample
documents and the real extractive model: each recommendation cites the crop guide section that
answers its finding, in Chinese and in English; a model's rewrite is kept only with its citations;
a day in range says so without advice; the scheduler makes each zone's advice once per day, also
across a restart."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from assistant.advice import Advisor
from assistant.advice_scheduler import AdviceScheduler
from assistant.llm.base import FakeChatModel, ModelError
from assistant.llm.extractive import ExtractiveModel
from tools.advice.push_source import AdvicePushSource
from tools.advice.settings import AdviceSettings
from tools.advice.store import AdviceStore
from tools.errors import NotFoundError
from tools.sensors.store import SensorStore

from tests.tools.advice.days import DAY, SAMPLE_PROFILE, fill_healthy, simulate_day

ADVICE_DATE = date(2026, 3, 11)  # reads DAY
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    from assistant.settings import Settings
    from knowledge.builder import build_index
    from knowledge.embedding import make_embedder
    from knowledge.retrieval import Retriever

    home = tmp_path_factory.mktemp("advice-index")
    settings = Settings(home=home, embedding={"model": "fake"})
    build_index([settings.samples_dir], settings)
    embedder = make_embedder(settings.embedding, home)
    return Retriever(settings, embedder=embedder), embedder


@pytest.fixture(scope="module")
def site():
    from tools.site import load_site_profile

    return load_site_profile(SAMPLE_PROFILE)


@pytest.fixture(scope="module")
def cold_store(site, tmp_path_factory):
    store = SensorStore(tmp_path_factory.mktemp("cold") / "sensors.sqlite")
    simulate_day(site, store, faults=["heater_failure:GH-1"])
    return store


def _advisor(site, store, knowledge, tmp_path, at=datetime(2026, 3, 11, 7, 0, tzinfo=SHANGHAI), model=None,
             **settings):
    retriever, embedder = knowledge
    return Advisor(site, store, retriever, AdviceStore(tmp_path / "advice.sqlite"), AdviceSettings(**settings),
                   model=lambda: model, extractive=ExtractiveModel(embedder), clock=lambda: at)


def _section(advice, rec):
    return [next(c for c in advice["citations"] if c["n"] == n)["section"] for n in rec["citations"]]


@pytest.mark.parametrize("lang,guide", [("en", "tomato-greenhouse-guide.en.md"), ("zh", "tomato-greenhouse-guide.zh.md")])
def test_each_recommendation_cites_the_guide_section_in_the_zone_language(site, cold_store, knowledge, tmp_path,
                                                                          lang, guide):
    advisor = _advisor(site, cold_store, knowledge, tmp_path, lang=lang)
    a = advisor.get("GH-1", ADVICE_DATE)
    assert a["status"] == "ready" and a["day"] == DAY.isoformat() and a["lang"] == lang
    assert a["mode"] == "extractive" and a["severity"] == "warning"
    recs = {r["finding"]["topic"]: r for r in a["recommendations"]}
    cold = recs["air_temperature:night:low"]
    assert _section(a, cold)[0].startswith("5.3")  # an alarm-level cold night: the heating failure response
    assert recs["relative_humidity:day:high"] and _section(a, recs["relative_humidity:day:high"])[0].startswith("5.1")
    assert _section(a, recs["co2:day:low"])[0].startswith("5.5")
    for rec in a["recommendations"]:
        assert rec["sentences"] and rec["citations"], rec["finding"]["topic"]
        for sentence, n in rec["sentences"]:
            assert f"{sentence} [{n}]" in a["body"]  # quoted with its marker
    for c in a["citations"]:
        assert c["source"] == guide and c["lang"] == lang and c["doc"]
        assert f"[{c['n']}] {c['title']}" in a["body"]
    # the numbers of the finding are in the text
    f = cold["finding"]
    assert f"{f['beyond']:.1f}" in a["body"] and ("16–18 °C" in a["body"])
    label = "Extract mode" if lang == "en" else "摘录模式"
    assert a["body"].startswith(label)


def test_zone_language_setting_and_unknown_zone(site, cold_store, knowledge, tmp_path):
    advisor = _advisor(site, cold_store, knowledge, tmp_path, lang="zh", zone_lang={"GH-2": "en"})
    assert advisor.get("GH-1", ADVICE_DATE)["lang"] == "zh" and advisor.get("GH-2", ADVICE_DATE)["lang"] == "en"
    with pytest.raises(NotFoundError, match="GH-1, GH-2"):
        advisor.get("PH-1", ADVICE_DATE)


def test_a_day_in_range_says_so_without_advice(site, knowledge, tmp_path):
    store = SensorStore(tmp_path / "sensors.sqlite")
    fill_healthy(site, store, "GH-1")
    a = _advisor(site, store, knowledge, tmp_path, lang="en").get("GH-1", ADVICE_DATE)
    assert a["severity"] == "info" and a["findings"] == [] and a["citations"] == []
    assert "no change needed today" in a["body"] and "Today:" not in a["body"]
    assert a["headline"] == "GH-1 2026-03-10: all within targets"
    nothing = _advisor(site, store, knowledge, tmp_path / "x", lang="en").get("GH-2", ADVICE_DATE)
    assert "No readings from GH-2 on 2026-03-10" in nothing["body"] and nothing["findings"] == []
    assert not re.search(r"\d+(\.\d+)? °C", nothing["body"])  # no invented numbers


def test_pending_until_the_day_it_reads_is_over(site, cold_store, knowledge, tmp_path):
    advisor = _advisor(site, cold_store, knowledge, tmp_path, at=datetime(2026, 3, 10, 20, 0, tzinfo=SHANGHAI))
    p = advisor.get("GH-1", ADVICE_DATE)
    assert p["status"] == "pending" and p["ready_at"] == "2026-03-11T06:00:00+08:00"
    assert advisor.store.count() == 0


def _scripted_rewrite(site, store, knowledge, tmp_path, lang, reply_from):
    template = _advisor(site, store, knowledge, tmp_path / "t", lang=lang).get("GH-1", ADVICE_DATE)["text"]
    markers = sorted(set(re.findall(r"\[\d+\]", template)), key=lambda m: int(m[1:-1]))
    model = FakeChatModel([reply_from(markers)])
    return _advisor(site, store, knowledge, tmp_path, lang=lang, model=model).get("GH-1", ADVICE_DATE), model, template


def test_the_model_rewrite_is_kept_with_its_citations(site, cold_store, knowledge, tmp_path):
    a, model, _ = _scripted_rewrite(site, cold_store, knowledge, tmp_path, "en",
                                    lambda ms: "Nights fell to 4.5 °C: check the boiler " + " ".join(ms))
    assert a["mode"] == "llm" and a["text"].startswith("Nights fell to 4.5 °C")
    assert "Sources:" in a["body"] and "Extract mode" not in a["body"]
    assert a["body"].startswith("Written by the language model from the template")
    assert "16–18 °C" in model.calls[0][1].content  # the model was given the template with the numbers


def test_a_rewrite_that_loses_a_citation_falls_back_to_the_template(site, cold_store, knowledge, tmp_path):
    a, _, template = _scripted_rewrite(site, cold_store, knowledge, tmp_path, "zh",
                                       lambda ms: "夜温过低，检查锅炉。" + " ".join(ms[1:]) + " [99]")
    assert a["mode"] == "fallback" and a["text"] == template
    assert a["mode_note"] == "模型改写丢失了来源标记[1]；模型改写引用了不存在的来源[99]"
    assert a["body"].startswith("显示模板：" + a["mode_note"])
    b, _, _ = _scripted_rewrite(site, cold_store, knowledge, tmp_path / "b", "en", lambda ms: ModelError("down"))
    assert b["mode"] == "fallback" and b["mode_note"] == "the model failed (ModelError)"


def test_scheduler_makes_each_zone_once_per_day_across_a_restart(site, cold_store, knowledge, tmp_path):
    early = _advisor(site, cold_store, knowledge, tmp_path, at=datetime(2026, 3, 11, 5, 59, tzinfo=SHANGHAI))
    assert early.run_due() == [] and early.store.count() == 0
    at_hour = _advisor(site, cold_store, knowledge, tmp_path, at=datetime(2026, 3, 11, 6, 0, tzinfo=SHANGHAI))
    assert sorted(a.zone for a in at_hour.run_due()) == ["GH-1", "GH-2"]
    assert at_hour.run_due() == []
    at_hour.store.close()

    later = datetime(2026, 3, 11, 9, 0, tzinfo=SHANGHAI)  # a restart: a new scheduler thread on the same file
    restarted = _advisor(site, cold_store, knowledge, tmp_path, at=later, check_s=1)
    scheduler = AdviceScheduler(restarted).start()
    time.sleep(0.3)
    scheduler.stop()
    assert not scheduler.thread.is_alive() and restarted.store.count() == 2
    msgs, _ = AdvicePushSource(restarted.store).messages_since(0)
    assert sorted(m.key for m in msgs) == ["advice:GH-1:2026-03-11", "advice:GH-2:2026-03-11"]

    next_day = _advisor(site, cold_store, knowledge, tmp_path, at=datetime(2026, 3, 12, 6, 5, tzinfo=SHANGHAI),
                        check_s=1)
    scheduler = AdviceScheduler(next_day).start()
    deadline = time.monotonic() + 20
    while next_day.store.count() < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert next_day.store.count() == 4  # the next day's pair, once
    # the simulation ended at midnight: 11 March has one reading per sensor, and the advice says so
    notes = next_day.get("GH-1", date(2026, 3, 12))["summary"]["notes"]
    assert any("GH-1-TEMP" in n and "incomplete" in n for n in notes)


def test_disabled_scheduler_makes_nothing(site, cold_store, knowledge, tmp_path):
    advisor = _advisor(site, cold_store, knowledge, tmp_path, enabled=False)
    assert advisor.run_due() == [] and not AdviceScheduler(advisor).start().thread.is_alive()


def test_the_page_panel_shows_each_zone_with_its_sources(site, cold_store, knowledge, tmp_path):
    from types import SimpleNamespace

    from ui.advice_panel import advice_markdown, available

    advisor = _advisor(site, cold_store, knowledge, tmp_path, lang="en")
    services = SimpleNamespace(parts=object(), _advisor=advisor)
    advisor.clock = lambda: datetime(2026, 3, 11, 7, 0, tzinfo=SHANGHAI)
    text = advice_markdown(services, "en")
    assert available(services) and not available(SimpleNamespace(parts=None))
    assert "### GH-1 2026-03-10: " in text and "### GH-2 2026-03-10: " in text
    assert "Sources:" in text and "5.3 Night temperature below the limit" in text and "[1]" in text
    advisor.clock = lambda: datetime(2026, 3, 12, 5, 0, tzinfo=SHANGHAI)  # 12 March, before the hour: made on look
    assert "GH-1 2026-03-11" in advice_markdown(services, "en")


def test_onsite_advice_command(site, knowledge, tmp_path):
    import json
    import os

    from typer.testing import CliRunner

    from assistant.cli import app

    retriever, _ = knowledge
    home = tmp_path / "home"
    home.mkdir()
    (home / "index").symlink_to(retriever.settings.home / "index", target_is_directory=True)
    store = SensorStore(home / "sensors.sqlite")
    day = datetime.now(UTC).astimezone(site.tz).date() - timedelta(days=2)  # the command runs on the real clock
    advice_date = (day + timedelta(days=1)).isoformat()
    simulate_day(site, store, day=day, faults=["heater_failure:GH-1"])
    store.close()
    env = {**os.environ, "ONSITE_HOME": str(home), "ONSITE_EMBEDDING__MODEL": "fake", "ONSITE_LLM__BACKEND": "extractive",
           "ONSITE_ADVICE__LANG": "en"}
    runner = CliRunner()
    out = runner.invoke(app, ["advice", "--zone", "GH-1", "--date", advice_date, "--json"], env=env)
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    a = report["advice"][0]
    assert report["mode"] == "extractive" and a["status"] == "ready" and a["seconds"] >= 0
    assert a["findings"][0]["topic"] == "air_temperature:night:low" and a["citations"]
    text = runner.invoke(app, ["advice", "--zone", "GH-1", "--date", advice_date], env=env)
    assert text.exit_code == 0 and "Night air temperature was below the target 16–18 °C" in text.output
    bad = runner.invoke(app, ["advice", "--zone", "GH-9"], env=env)
    assert bad.exit_code == 2 and "GH-1, GH-2" in bad.output
    assert runner.invoke(app, ["advice", "--date", "11/03/2026"], env=env).exit_code == 2
