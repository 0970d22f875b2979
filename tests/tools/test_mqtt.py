"""MQTT ingestion against a real mosquitto broker on a free loopback port."""

import json
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tools.site import load_site_profile
from tools.sensors.mqtt import MqttIngestor, MqttTarget
from tools.sensors.simulator import simulate
from tools.sensors.store import SensorStore, to_ms

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)
TS = to_ms(datetime(2025, 4, 15, 2, 0, tzinfo=UTC))


class Broker:
    """A mosquitto process with a generated config: loopback only, anonymous, no persistence."""

    def __init__(self, tmp: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conf = tmp / "mosquitto.conf"
        # max_queued_messages: mosquitto keeps at most 1000 QoS 1 messages per subscriber by default and
        # drops the rest; the sped-up simulator bursts ~1500 messages in a fraction of a second.
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             "max_queued_messages 100000\n")
        self.log = tmp / "mosquitto.log"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def broker(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("the mosquitto binary is not installed (Debian package 'mosquitto')")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()






def publisher(port):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def send(client, topic, payload, retain=False):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    client.publish(topic, body, qos=1, retain=retain).wait_for_publish(5)


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_readings_retained_values_and_bad_messages(broker, site, store):
    pub = publisher(broker.port)
    # retained last values published before anyone listens
    send(pub, "site/GH-1/climate-box-1/air_temperature", {"ts": TS, "value": 17.4, "unit": "°C"}, retain=True)
    send(pub, "site/PH-1/VT-101/vibration_rms", {"ts": TS, "value": 1.62, "unit": "mm/s", "quality": "good"}, retain=True)
    ing = MqttIngestor(site, store, "127.0.0.1", broker.port, batch_size=50, flush_s=0.2).start()
    try:
        assert ing.wait_subscribed(10)
        assert wait(lambda: store.count("GH-1-TEMP") == 1 and store.count("VT-101") == 1)
        for i in range(1, 101):
            send(pub, "site/GH-1/climate-box-1/air_temperature", {"ts": TS + i * 1000, "value": 17 + i / 100,
                                                                  "unit": "degC", "quality": "good"})
        send(pub, "site/GH-1/climate-box-1/relative_humidity",
             {"ts": "2025-04-15T10:00:00+08:00", "value": "82.5", "quality": "uncertain"})
        bad = [b"not json", {"ts": TS, "unit": "°C"}, {"ts": TS, "value": True}, {"ts": TS, "value": "warm"},
               {"ts": "soon", "value": 1}, {"ts": TS, "value": 1, "quality": "excellent"}, [1, 2], b"NaN"]
        for payload in bad:
            send(pub, "site/GH-1/climate-box-1/co2", payload)
        send(pub, "site/GH-1/climate-box-1/co2", {"ts": TS, "value": 55.0, "unit": "°F"})  # wrong unit
        send(pub, "site/GH-7/box/air_temperature", {"ts": TS, "value": 1})  # not in the profile
        send(pub, "site/GH-1/climate-box-1/co2", b"612")  # a bare number is a value received now
        assert wait(lambda: store.count("GH-1-TEMP") == 101 and store.count("GH-1-RH") == 1
                    and store.count("GH-1-CO2") == 1)
        assert wait(lambda: ing.stats["malformed"] == len(bad) and ing.stats["unit_mismatch"] == 1
                    and ing.stats["unknown_topic"] == 1)
    finally:
        ing.stop()
        pub.loop_stop()
        pub.disconnect()
    stats = ing.stats
    assert stats["stored"] == 104 and stats["write_errors"] == 0 and stats["dropped"] == 0
    assert store.latest(["GH-1-TEMP"])["GH-1-TEMP"].value == 18.0
    rh = store.latest(["GH-1-RH"])["GH-1-RH"]
    assert (rh.value, rh.quality, rh.ts) == (82.5, 1, TS)
    assert abs(store.latest(["GH-1-CO2"])["GH-1-CO2"].ts - time.time() * 1000) < 60_000
    assert ing._writer is None and not ing.client.is_connected()


def test_broker_restart_and_the_subscriber_keeps_ingesting(broker, site, store):
    ing = MqttIngestor(site, store, "127.0.0.1", broker.port, flush_s=0.1, reconnect_min_s=1, reconnect_max_s=2).start()
    try:
        assert ing.wait_subscribed(10)
        pub = publisher(broker.port)
        send(pub, "site/PH-1/FT-101/flow", {"ts": TS, "value": 48.1})
        assert wait(lambda: store.count("FT-101") == 1)
        pub.loop_stop()
        broker.stop()
        assert wait(lambda: ing.stats["disconnects"] >= 1)
        time.sleep(0.5)
        broker.start()
        assert ing.wait_subscribed(15), ing.stats
        assert ing.stats["connects"] >= 2
        pub = publisher(broker.port)
        for i in range(1, 21):
            send(pub, "site/PH-1/FT-101/flow", {"ts": TS + i * 1000, "value": 48 + i / 10})
        assert wait(lambda: store.count("FT-101") == 21)
        pub.loop_stop()
        pub.disconnect()
    finally:
        ing.stop()


def test_simulator_over_mqtt_lands_in_the_store(broker, site, store):
    with MqttIngestor(site, store, "127.0.0.1", broker.port, batch_size=500, flush_s=0.2) as ing:
        assert ing.wait_subscribed(10)
        start = datetime(2025, 4, 15, 0, 0, tzinfo=UTC)
        report = simulate(site, MqttTarget("127.0.0.1", broker.port), hours=1, faults=[], seed=3,
                          speed=36_000, start=start)  # an hour in ~0.1 s of pacing
        # 61 steps x 24 sensors (the two daily light integrals are sent at the end of the day only)
        assert report.mode == "mqtt" and report.failed == 0 and report.readings == 61 * 24
        assert wait(lambda: ing.stats["stored"] == report.readings, timeout=20), ing.stats
    assert store.count("GH-1-TEMP") == 61
    assert store.latest(["GH-1-TEMP"])["GH-1-TEMP"].ts == to_ms(start + timedelta(hours=1))
    # retained values: a late subscriber gets each sensor's last value at once
    late = SensorStore(store.path.with_name("late.sqlite"))
    with MqttIngestor(site, late, "127.0.0.1", broker.port, flush_s=0.1) as ing2:
        assert ing2.wait_subscribed(10)
        assert wait(lambda: late.sensor_ids() == store.sensor_ids())
    late.close()


def test_unreachable_broker_is_not_fatal_and_stops_cleanly(site, store):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    ing = MqttIngestor(site, store, "127.0.0.1", port, reconnect_min_s=1, reconnect_max_s=1).start()
    assert not ing.wait_subscribed(1.0)
    ing.stop(timeout=5)
    assert ing._writer is None
    with pytest.raises(ConnectionError, match="no MQTT broker answered"):
        simulate(site, MqttTarget("127.0.0.1", port, connect_timeout=1), hours=1, speed=1000)
