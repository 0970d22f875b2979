"""MQTT in and out: the subscriber that feeds the store, and a small publisher for the simulator.

Topics are ``site/<zone>/<device>/<metric>``; the payload is JSON ``{"ts", "value", "unit",
"quality"}`` (``ts`` epoch ms / s or ISO 8601, default: time of receipt; ``unit`` checked
against the profile when present; ``quality`` good / uncertain / bad, default good). A bare
JSON number is accepted as a value received now. paho-mqtt 2.x, callback API version 2.

The network thread (paho's ``loop_start``) only queues raw messages. A writer thread parses
them and inserts in batches (every ``batch_size`` messages or ``flush_s`` seconds), so a slow
disk never stalls keep-alives. paho reconnects by itself with exponential backoff
(``reconnect_delay_set``); we subscribe again on every connect. Bad payloads and unknown topics
are counted in ``stats`` and logged, never fatal.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from tools.sensors.store import Reading, SensorStore, parse_quality
from tools.sensors.timestamps import parse_ts

log = logging.getLogger(__name__)
TOPIC_FILTER = "site/+/+/+"
MAX_PAYLOAD = 65_536
_STOP = object()
_LOG_FIRST = 10  # log the first N problems of each kind at WARNING, later ones at DEBUG
_UNIT_ALIASES = {"degc": "°c", "c": "°c", "℃": "°c", "celsius": "°c", "%rh": "%", "rh": "%", "percent": "%"}


def _unit(u: str) -> str:
    u = u.strip().casefold().replace(" ", "")
    return _UNIT_ALIASES.get(u, u)


def parse_payload(payload: bytes, sensor, received_ms: int) -> Reading:
    """One message → a Reading for ``sensor``; ValueError says what is wrong with it."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is too large")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc.__class__.__name__})") from None
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        data = {"value": data}
    if not isinstance(data, dict):
        raise ValueError("payload is not a JSON object")
    raw = data.get("value")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"missing or non-numeric value {raw!r}"[:120])
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"non-numeric value {raw!r}"[:120]) from None
    if not math.isfinite(value):
        raise ValueError(f"value {raw!r} is not finite")
    unit = data.get("unit")
    if unit not in (None, "") and sensor.unit and _unit(str(unit)) != _unit(sensor.unit):
        raise LookupError(f"unit {unit!r} but {sensor.id} is in {sensor.unit!r}")
    ts = parse_ts(data["ts"]) if data.get("ts") is not None else received_ms
    return Reading(sensor.id, ts, value, parse_quality(data.get("quality")))


def make_payload(ts_ms: int, value: float, unit: str = "", quality: str = "good") -> bytes:
    return json.dumps({"ts": ts_ms, "value": value, "unit": unit, "quality": quality},
                      ensure_ascii=False, separators=(",", ":")).encode()


class MqttIngestor:
    """Subscribe to the site's topics and write readings into a SensorStore."""

    def __init__(self, site, store: SensorStore, host: str = "127.0.0.1", port: int = 1883, *,
                 topic: str = TOPIC_FILTER, qos: int = 1, batch_size: int = 500, flush_s: float = 1.0,
                 client_id: str | None = None, keepalive: int = 30, reconnect_min_s: int = 1,
                 reconnect_max_s: int = 30, max_queue: int = 200_000):
        self.site, self.store, self.host, self.port = site, store, host, port
        self.topic, self.qos, self.batch_size, self.flush_s = topic, qos, batch_size, flush_s
        self.keepalive = keepalive
        self._topics = site.topic_map()
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._stats = dict(received=0, stored=0, malformed=0, unknown_topic=0, unit_mismatch=0, dropped=0,
                           write_errors=0, batches=0, connects=0, disconnects=0)
        self._subscribed = threading.Event()
        self._stopping = False
        self._writer: threading.Thread | None = None
        # A given client_id means a persistent session: the broker queues QoS 1 messages while we are away.
        self.client_id = client_id or f"onsite-ingest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.status_topic = f"onsite/status/{self.client_id}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  clean_session=client_id is None)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        self.client.will_set(self.status_topic, "offline", qos=1, retain=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "MqttIngestor":
        self._writer = threading.Thread(target=self._write_loop, name="onsite-mqtt-writer", daemon=True)
        self._writer.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()  # retries the first connection too, with the backoff above
        return self

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect cleanly, then write whatever is still queued."""
        self._stopping = True
        try:
            if self.client.is_connected():
                self.client.publish(self.status_topic, "offline", qos=0, retain=True)
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            if self._writer is not None:
                self._queue.put(_STOP)
                self._writer.join(timeout)
                self._writer = None

    def __enter__(self) -> "MqttIngestor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def _count(self, key: str, n: int = 1) -> int:
        with self._lock:
            self._stats[key] += n
            return self._stats[key]

    # -- paho callbacks (network thread: keep them short) ---------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        n = self._count("connects")
        log.info("MQTT connected to %s:%s (%s)%s", self.host, self.port, reason_code, " again" if n > 1 else "")
        client.subscribe(self.topic, qos=self.qos)
        client.publish(self.status_topic, "online", qos=1, retain=True)

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties) -> None:
        if any(rc.is_failure for rc in reason_code_list):
            log.warning("MQTT subscription to %s refused: %s", self.topic, reason_code_list)
            return
        self._subscribed.set()

    def _on_disconnect(self, client, userdata, disconnect_flags, reason_code, properties) -> None:
        self._subscribed.clear()
        self._count("disconnects")
        if self._stopping:
            log.info("MQTT disconnected from %s:%s", self.host, self.port)
        else:
            log.warning("MQTT disconnected from %s:%s (%s); paho reconnects with backoff", self.host, self.port,
                        reason_code)

    def _on_message(self, client, userdata, message) -> None:
        self._count("received")
        try:
            self._queue.put_nowait((message.topic, message.payload, int(time.time() * 1000)))
        except queue.Full:
            if self._count("dropped") <= _LOG_FIRST:
                log.warning("MQTT ingest queue full; dropping messages (writer too slow?)")

    # -- writer thread ---------------------------------------------------------------------------
    def _problem(self, kind: str, topic: str, why: str) -> None:
        n = self._count(kind)
        log.log(logging.WARNING if n <= _LOG_FIRST else logging.DEBUG, "MQTT %s on %s: %s", kind, topic, why)

    def _parse(self, batch: list) -> list[Reading]:
        out = []
        for topic, payload, received in batch:
            sensor = self._topics.get(topic)
            if sensor is None:
                self._problem("unknown_topic", topic, "no sensor in the site profile has this topic")
                continue
            try:
                out.append(parse_payload(payload, sensor, received))
            except LookupError as exc:
                self._problem("unit_mismatch", topic, str(exc))
            except ValueError as exc:
                self._problem("malformed", topic, str(exc))
        return out

    def _flush(self, batch: list) -> None:
        readings = self._parse(batch)
        if not readings:
            return
        for attempt in (1, 2):
            try:
                self.store.insert(readings)
                self._count("stored", len(readings))
                self._count("batches")
                return
            except Exception as exc:  # noqa: BLE001 - a failed write is logged, the ingestor goes on
                log.warning("writing %d readings failed (attempt %d): %s", len(readings), attempt, exc)
                time.sleep(0.5)
        self._count("write_errors")

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            batch: list = []
            deadline = time.monotonic() + self.flush_s
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            if stopping:  # take whatever arrived before the stop marker
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not _STOP:
                        batch.append(item)
            if batch:
                self._flush(batch)


@dataclass
class MqttTarget:
    """Where the simulator publishes."""

    host: str = "127.0.0.1"
    port: int = 1883
    qos: int = 1
    retain: bool = True  # a new subscriber gets each sensor's last value at once
    connect_timeout: float = 10.0


class MqttPublisher:
    """A connected paho client that publishes and, on close, waits until QoS 1 messages are acked."""

    def __init__(self, target: MqttTarget):
        self.target = target
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"onsite-sim-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(1, 10)
        self._pending: deque = deque()
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: None if rc.is_failure else self._connected.set()
        self.client.connect_async(target.host, target.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(target.connect_timeout):
            self.client.loop_stop()
            raise ConnectionError(f"no MQTT broker answered at {target.host}:{target.port}")

        self.published = 0
        self.failed = 0  # refused by paho (no connection, queue full); the simulator goes on

    def _done(self, info) -> bool:
        try:
            return info.is_published()
        except (ValueError, RuntimeError):
            self.failed += 1
            return True

    def publish(self, topic: str, payload: bytes) -> None:
        self._pending.append(self.client.publish(topic, payload, qos=self.target.qos, retain=self.target.retain))
        self.published += 1
        while self._pending and self._done(self._pending[0]):
            self._pending.popleft()

    def publish_paced(self, steps, sensors: dict, start_ms: int, speed: float, stop=None) -> int:
        """Publish ``(ts, readings)`` steps in real time ``speed`` times faster; returns readings sent."""
        t0, sent = time.perf_counter(), 0
        for ts, readings in steps:
            delay = t0 + (ts - start_ms) / 1000 / speed - time.perf_counter()
            if delay > 0:
                stop.wait(delay) if stop is not None else time.sleep(delay)
            if stop is not None and stop.is_set():
                break
            for r in readings:
                s = sensors[r.sensor_id]
                self.publish(s.mqtt_topic, make_payload(r.ts, r.value, s.unit))
            sent += len(readings)
        return sent

    def close(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            if self._done(self._pending[0]):
                self._pending.popleft()
            else:
                time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()
