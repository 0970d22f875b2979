"""``onsite serve`` as a user runs it (a subprocess on a free loopback port: sample index built on
first start, sensors backfilled and fed, URLs printed, SIGINT stops everything), and the sensor
feed on its own (backfill, gap fill, direct and MQTT live feeds)."""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from assistant.server import SensorFeed, mosquitto_binary
from tools.sensors.store import SensorStore
from tools.site import load_site_profile

from .conftest import OPERATOR_KEY

PROFILE = load_site_profile(os.path.join(os.path.dirname(__file__), "..", "..", "knowledge", "samples",
                                         "site-profile.toml"))


def _lines(proc: subprocess.Popen) -> queue.Queue:
    out: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            out.put(line)
        out.put(None)

    threading.Thread(target=read, daemon=True).start()
    return out


def _wait_for(lines: queue.Queue, pattern: str, timeout: float, seen: list[str]) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no {pattern!r} in the output:\n{''.join(seen)}")


@pytest.mark.integration
def test_onsite_serve_runs_the_whole_product(tmp_path):
    """As after a plain `make run`: no API key configured, so the server makes one, says so in the
    banner with a curl line that works, and the API takes it (a wrong key is still 401)."""
    env = {**os.environ, "ONSITE_HOME": str(tmp_path / "home"), "ONSITE_EMBEDDING__MODEL": "fake",
           "HF_HUB_OFFLINE": "1", "ONSITE_LLM__FETCH_ON_START": "false", "PYTHONUNBUFFERED": "1"}
    for name in ("ONSITE_CONFIG", "ONSITE_API_KEYS", "ONSITE_API__API_KEYS", "ONSITE_API__KEYS_FILE"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-c", "from assistant.cli import main; main()", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    seen: list[str] = []
    lines = _lines(proc)
    try:
        url = _wait_for(lines, r"onsite is serving on (http://127\.0\.0\.1:\d+)/", 120, seen).group(1)
        assert seen[0].startswith("starting onsite")  # said at once, before the heavy imports
        feed = _wait_for(lines, r"sensors:\s+(\S+)", 5, seen).group(1)
        key, path = _wait_for(lines, r"API key:\s+(\S+) \(generated; in (\S+) ", 5, seen).groups()
        curl = _wait_for(lines, r'try:\s+curl -H "Authorization: Bearer (\S+)" (\S+)', 5, seen)
        _wait_for(lines, r"EXTRACTIVE MODE", 5, seen)
        assert any("building the sample knowledge" in line for line in seen)
        assert curl.group(1) == key and len(key) >= 32 and curl.group(2).startswith(url + "/api/v1/")
        assert os.stat(path).st_mode & 0o777 == 0o600 and open(path).read().strip() == key
        with httpx.Client(base_url=url, timeout=30) as http:
            tried = http.get(curl.group(2), headers={"Authorization": f"Bearer {key}"})  # the banner's own line
            assert tried.status_code == 200 and tried.json()["data"], tried.text
            assert http.get(curl.group(2), headers={"Authorization": f"Bearer {OPERATOR_KEY}"}).status_code == 401
            assert http.get(curl.group(2)).status_code == 401
            ready = http.get("/readyz").json()["data"]
            assert ready["ready"] and ready["index"]["version"] == "v000001" and ready["model"]["mode"] == "extractive"
            headers = {"Authorization": f"Bearer {key}"}
            latest = http.get("/api/v1/sensors/GH-1-TEMP/latest", headers=headers).json()["data"]
            assert latest["value"] is not None and latest["age_s"] < 600
            series = http.get("/api/v1/sensors/GH-1-TEMP/series", headers=headers,
                              params={"from": (datetime.now(UTC) - timedelta(hours=47)).isoformat()}).json()["data"]
            assert len(series["points"]) > 100  # the 48 h backfill
            assert http.get("/", follow_redirects=False).status_code in (200, 307)
            page = http.get("/", follow_redirects=True)  # the generated key opens the APIs, not the page's door
            assert page.status_code == 200 and "/ui-login" not in str(page.url)
        client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        assert [m.id for m in client.models.list().data] == ["onsite"]
        answer = client.chat.completions.create(
            model="onsite", messages=[{"role": "user", "content": "How do I lock out pump P-101?"}])
        assert answer.choices[0].message.content and answer.model_extra["sources"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        while (line := lines.get(timeout=10)) is not None:
            seen.append(line)
    output = "".join(seen)
    assert code == 0, output
    assert "onsite stopped" in output and "Traceback" not in output
    assert "DEBUG:" not in output  # bm25s sets its own logger to DEBUG on import (assistant.logs)
    if feed.startswith("mqtt://"):
        port = int(feed.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()  # the broker is gone too


def test_backfill_fills_48_hours_then_only_the_gap(tmp_path):
    store = SensorStore(tmp_path / "s.sqlite")
    feed = SensorFeed(PROFILE, store, tmp_path / "run")
    now = datetime.now(UTC).replace(microsecond=0)
    first = feed.backfill(now)
    assert first > 10_000 and store.count("GH-1-TEMP") == 48 * 60 + 1
    assert feed.backfill(now + timedelta(seconds=30)) == 0  # up to date
    gap = feed.backfill(now + timedelta(hours=1))
    assert 0 < gap < first / 40 and store.count("GH-1-TEMP") == 48 * 60 + 1 + 60
    store.close()


def test_direct_feed_writes_live_readings(tmp_path):
    store = SensorStore(tmp_path / "s.sqlite")
    feed = SensorFeed(PROFILE, store, tmp_path / "run", "direct").start()
    try:
        assert feed.via == "direct"
        before = store.count("GH-1-TEMP")
        assert store.wait_for("GH-1-TEMP", before + 1, timeout=10)  # the first live step is now
    finally:
        feed.stop()
    assert not feed.thread.is_alive()
    store.close()


@pytest.mark.skipif(mosquitto_binary() is None, reason="the mosquitto binary is not installed (Debian 'mosquitto')")
@pytest.mark.integration
def test_mqtt_feed_goes_through_a_private_broker(tmp_path):
    store = SensorStore(tmp_path / "s.sqlite")
    feed = SensorFeed(PROFILE, store, tmp_path / "run", "mqtt").start()
    try:
        assert feed.via.startswith("mqtt://127.0.0.1:")
        before = store.count("VT-101")
        assert store.wait_for("VT-101", before + 1, timeout=15)
        assert feed.ingestor.stats["stored"] > 0
        port = feed.broker.port
    finally:
        feed.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    store.close()


def test_start_re_embeds_an_index_built_by_another_embedder_and_says_so(tmp_path):
    from assistant.server import ensure_index
    from assistant.settings import Settings
    from knowledge.builder import build_index
    from knowledge.embedding import FakeEmbedder
    from knowledge.index import KnowledgeIndex
    from tests.knowledge.conftest_index import write_corpus

    settings = Settings(home=tmp_path / "home")
    build_index([write_corpus(tmp_path)], settings, embedder=FakeEmbedder(dim=32, name="old-model"))
    said: list[str] = []
    new = FakeEmbedder(dim=48, name="new-model")
    ensure_index(settings, new, said.append)
    live = KnowledgeIndex(settings).version()
    assert live.name == "v000002" and live.manifest["embedder"]["name"] == new.name and live.vectors.d == 48
    assert "re-embedding" in said[0] and "old-model-32" in said[0] and "new-model-48" in said[0]
    ensure_index(settings, new, said.append)  # same embedder now: nothing to do
    assert KnowledgeIndex(settings).version().name == "v000002" and len(said) == 2


def test_warm_up_runs_a_whole_turn_and_keeps_nothing(make_api_service, caplog):
    """The first question after "serving" no longer pays for lazy loading (issue 14: 15 s): the
    warm-up loads the index and jieba and answers a turn through the agent, but writes no
    conversation and no audit record, and never asks the language model."""
    import sqlite3

    from assistant.startup import warm_up, warm_up_question
    from knowledge.text import _jieba
    from tests.api.fakes import EchoModel

    class Counted(EchoModel):
        def decide(self, messages, schema, options=None):
            self.calls.append("decide")
            return super().decide(messages, schema, options)

    model = Counted()
    model.calls = []
    service = make_api_service(model)
    _jieba.cache_clear()
    assert service.parts.index._live is None
    with caplog.at_level(logging.INFO, logger="onsite.server"):
        seconds = warm_up(service)
    assert "warm-up failed" not in caplog.text and "warm-up:" in caplog.text
    assert seconds > 0 and service.parts.index._live is not None and _jieba.cache_info().currsize == 1
    assert "GH-1" in warm_up_question(service.site) and "P-101" in warm_up_question(service.site)
    assert model.calls == [] and model.answers == 0 and service.parts.audit.turns() == []
    with sqlite3.connect(service.settings.conversations_db) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert "checkpoints" not in tables or db.execute("select count(*) from checkpoints").fetchone()[0] == 0
