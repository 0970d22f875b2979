"""``onsite serve``: the whole product on one port — chat page, REST API, OpenAI-compatible API.

On start: the sample knowledge is built when no index exists yet; the service is made (the GGUF
model when present, otherwise the labelled extractive mode, said in the banner — and, when
``llm.fetch_on_start`` allows, the model is fetched in the background and answers switch to it
once it is verified and loaded); the sensor store
is backfilled with 48 h of simulated history when it is empty (or the gap since the last reading
is filled), then fed live by the simulator — through a private mosquitto broker on a free
loopback port and the MQTT ingestor when Debian's ``mosquitto`` is installed, directly otherwise.
Before "serving" is printed, a warm-up turn loads what the first question needs
(assistant/startup.py). Without configured API keys a generated first key opens the APIs
(assistant/api/first_key.py; the page stays open on loopback), printed with a curl line that
works. The URLs are printed; Ctrl-C (SIGINT / SIGTERM) stops the server, the feed, the broker and the
service in that order.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from assistant.errors import OnsiteError, user_message
from assistant.llm import LoadedModel, load_chat_model
from assistant.llm.base import CancelledError, ModelError
from assistant.llm.extractive import ExtractiveModel
from assistant.services import Services
from assistant.settings import Settings

log = logging.getLogger("onsite.server")

FeedMode = Literal["auto", "mqtt", "direct", "off"]
BACKFILL_HOURS = 48
FEED_STEP_S = 60
FEED_HOURS = 24 * 366  # the simulator's longest run; the feed starts a new one after it


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Broker:
    """A private mosquitto on a loopback port: anonymous, no persistence, its log in ``folder``."""

    def __init__(self, folder: Path, binary: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             "max_queued_messages 100000\n")
        self.log_path = folder / "mosquitto.log"
        self.binary = binary
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Broker":
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start: {self.log_path.read_text(errors='replace')[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class SensorFeed:
    """Simulated sensor history and live readings for the sample site."""

    def __init__(self, site: Any, store: Any, run_dir: Path, mode: FeedMode = "auto", *, seed: int = 0,
                 step_s: int = FEED_STEP_S):
        self.site, self.store, self.run_dir, self.mode = site, store, run_dir, mode
        self.seed, self.step_s = seed, step_s
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.broker: Broker | None = None
        self.ingestor: Any = None
        self.via = "off"

    def backfill(self, now: datetime | None = None) -> int:
        """History for the last 48 h when the store is empty, or since the newest reading."""
        from tools.sensors.simulator import simulate
        from tools.sensors.store import from_ms

        now = (now or datetime.now(UTC)).replace(microsecond=0)
        end = now - timedelta(seconds=self.step_s)  # the live feed's first reading is at "now": no overlap
        latest = self.store.latest([s.id for s in self.site.sensors])
        start = end - timedelta(hours=BACKFILL_HOURS)
        if latest:
            newest = from_ms(max(r.ts for r in latest.values()))
            if now - newest < timedelta(seconds=2 * self.step_s):
                return 0
            start = max(start, newest + timedelta(seconds=self.step_s))
        hours = (end - start).total_seconds() / 3600
        if hours <= 0:
            return 0
        report = simulate(self.site, self.store, hours=hours, seed=self.seed, speed=1e9, start=start,
                          step_s=self.step_s)
        log.info("sensor history backfilled: %s", report.summary)
        return report.readings

    def start(self) -> "SensorFeed":
        if self.mode == "off":
            return self
        self.backfill()
        binary = mosquitto_binary() if self.mode in ("auto", "mqtt") else None
        if self.mode == "mqtt" and binary is None:
            log.warning("--feed mqtt: mosquitto is not installed (Debian package 'mosquitto'); feeding directly")
        if binary is not None:
            try:
                self._start_mqtt(binary)
                return self
            except Exception as exc:  # noqa: BLE001 - the direct feed still works without a broker
                log.warning("MQTT feed unavailable (%s); feeding the store directly", exc)
                self._stop_mqtt()
        self.via = "direct"
        self.thread = threading.Thread(target=self._direct, name="onsite-sensor-feed", daemon=True)
        self.thread.start()
        return self

    def _start_mqtt(self, binary: str) -> None:
        from tools.sensors.mqtt import MqttIngestor

        self.broker = Broker(self.run_dir / "mqtt", binary).start()
        self.ingestor = MqttIngestor(self.site, self.store, "127.0.0.1", self.broker.port).start()
        if not self.ingestor.wait_subscribed(10):
            raise RuntimeError("the MQTT ingestor did not subscribe")
        self.via = f"mqtt://127.0.0.1:{self.broker.port}"
        self.thread = threading.Thread(target=self._mqtt, name="onsite-sensor-feed", daemon=True)
        self.thread.start()

    def _runs(self, run: Callable[[datetime], None]) -> None:
        while not self.stop_event.is_set():
            try:
                run(datetime.now(UTC).replace(microsecond=0))
            except Exception:  # noqa: BLE001 - a broken feed is logged; the server goes on
                log.exception("sensor feed failed; restarting in 30 s")
                self.stop_event.wait(30)

    def _direct(self) -> None:
        from tools.sensors.simulator import SiteSimulator

        def run(start: datetime) -> None:
            sim = SiteSimulator(self.site, start, FEED_HOURS, seed=self.seed + 1, step_s=self.step_s)
            t0, start_ms = time.time(), sim.start
            for ts, readings in sim:
                delay = (ts - start_ms) / 1000 - (time.time() - t0)
                if delay > 0 and self.stop_event.wait(delay):
                    return
                if self.stop_event.is_set():
                    return
                self.store.insert(readings)

        self._runs(run)

    def _mqtt(self) -> None:
        from tools.sensors.mqtt import MqttTarget
        from tools.sensors.simulator import simulate

        target = MqttTarget("127.0.0.1", self.broker.port)
        self._runs(lambda start: simulate(self.site, target, FEED_HOURS, seed=self.seed + 1, speed=1.0, start=start,
                                          step_s=self.step_s, stop=self.stop_event))

    def _stop_mqtt(self) -> None:
        if self.ingestor is not None:
            self.ingestor.stop()
            self.ingestor = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(15)
        self._stop_mqtt()


# --- the model: loaded at once, or fetched in the background on the first start ----------------

FETCHING = "no model file yet; it is being fetched in the background (progress in the server log)"


class ModelOnTheWay(ExtractiveModel):
    """Labelled extracts while the model is being fetched, then the model itself. The agent keeps
    this one object and reads ``mode`` on every turn, so switching needs no rebuild of the agent;
    as an ExtractiveModel it is also the agent's extractive fallback (wiring.build_parts)."""

    def __init__(self, embedder: Any, reason: str = FETCHING):
        super().__init__(embedder, reason=reason)
        self.model: Any = None  # the ChatModel once loaded

    @property
    def mode(self) -> str:  # type: ignore[override]
        return "extractive" if self.model is None else self.model.mode

    @property
    def name(self) -> str:  # type: ignore[override]
        return "extractive" if self.model is None else self.model.name

    def stream(self, messages, options=None):
        return super().stream(messages, options) if self.model is None else self.model.stream(messages, options)

    def decide(self, messages, schema, options=None):
        return super().decide(messages, schema, options) if self.model is None else \
            self.model.decide(messages, schema, options)


class WatchThread:
    """The site watch (tools/watch/watch.py) in a thread of the server, on the server's own sensor
    and alert stores (one SQLite handle each per process)."""

    def __init__(self, settings: Settings, services):
        from tools.watch.watch import SiteWatch

        self.stop_event = threading.Event()
        self.watch = SiteWatch(services.site, services.parts.sensor_store, services.parts.alert_store,
                               settings.watch, models_dir=settings.watch_dir)
        self.thread = threading.Thread(target=self.watch.run_forever, args=(self.stop_event,),
                                       name="onsite-watch", daemon=True)

    def start(self) -> "WatchThread":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)


def push_thread(settings: Settings, services):
    """The push dispatcher (tools/push) over the server's alerts and daily advice, not yet started; None when
    push is off or no channel is configured."""
    from tools.push.dispatcher import PushThread
    from tools.push.registry import build_push

    sources = []
    if settings.advice.enabled:  # the daily advice is pushed too (key advice:{zone}:{date})
        from assistant.advice import advisor_for
        from tools.advice.push_source import AdvicePushSource

        sources.append(AdvicePushSource(advisor_for(services).store))
    dispatcher = build_push(settings, services.parts.alert_store, services.site, sources=sources)
    return None if dispatcher is None else PushThread(dispatcher)


class ModelFetch:
    """`onsite model pull` of the configured model ("auto" or a catalogue name) in a thread, its
    progress in the log; on success the model is loaded behind the stand-in, on failure the
    labelled extractive mode stays, with the reason. ``stop`` cancels it (pip is terminated and
    the partial file deleted)."""

    def __init__(self, settings: Settings, embedder: Any, loaded: LoadedModel, stand_in: ModelOnTheWay):
        self.settings, self.embedder, self.loaded, self.stand_in = settings, embedder, loaded, stand_in
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, name="onsite-model-fetch", daemon=True)

    def start(self) -> "ModelFetch":
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.cancel.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        from assistant.llm.model_sources import pull

        name = self.settings.llm.llamacpp.model
        log.info("model: fetching %r (llm.fetch_on_start; sources: llm.sources)", name)
        try:
            pull(name, self.settings, progress=lambda line: log.info("model: %s", line), cancel=self.cancel)
            if self.cancel.is_set():
                return
            loaded = load_chat_model(self.settings, self.embedder)
        except CancelledError:
            log.info("model: fetch cancelled")
            return
        except Exception as exc:  # noqa: BLE001 - the server keeps answering in extractive mode
            self._failed(user_message(exc))
            return
        if loaded.mode != "llm":
            self._failed(loaded.reason or "the model did not load")
            return
        self.stand_in.model = loaded.model
        self.loaded.mode, self.loaded.backend, self.loaded.reason = "llm", loaded.backend, None
        log.info("model: %s is loaded; answers now come from the model", loaded.model.name)

    def _failed(self, reason: str) -> None:
        reason = f"the model could not be fetched: {reason}"
        self.stand_in.reason = self.loaded.reason = reason
        log.warning("model: %s. Answering in EXTRACTIVE MODE.", reason)


def model_for_serving(settings: Settings, embedder: Any) -> tuple[LoadedModel | None, ModelFetch | None]:
    """(None, None) when the model is loaded the usual way (present, not a catalogue model, or
    ``llm.fetch_on_start`` off); else the extractive stand-in and the fetch that replaces it."""
    if not _wants_fetch(settings):
        return None, None
    stand_in = ModelOnTheWay(embedder)
    loaded = LoadedModel(stand_in, "extractive", settings.llm.backend, FETCHING)
    return loaded, ModelFetch(settings, embedder, loaded, stand_in)


def _wants_fetch(settings: Settings) -> bool:
    from assistant.llm.management import check_model, resolve_model

    if settings.llm.backend != "llamacpp" or not settings.llm.fetch_on_start:
        return False
    if importlib.util.find_spec("llama_cpp") is None:
        return False  # the file would be of no use; load_chat_model says what is missing
    try:
        if resolve_model(settings).entry is None:
            return False  # a .gguf given by path: nothing to fetch
        check_model(settings)
    except ModelError:
        return True  # missing or refused: fetch it
    except OnsiteError:
        return False  # a settings error: load_chat_model reports it
    return False


# --- who may reach it --------------------------------------------------------------------------

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.1, ::1 (any loopback address) or localhost; '' and 0.0.0.0 are every interface."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str, allow_open: bool = False) -> int:
    """The number of API keys; refuses (OnsiteError) to serve the page without sign-in on an address
    other machines reach, unless ``allow_open`` / ``api.allow_open`` says so."""
    from assistant.api.auth import keys_from_settings

    keys = len(keys_from_settings(settings))
    if keys or is_loopback(host) or allow_open or settings.api.allow_open:
        return keys
    raise OnsiteError(
        f"refusing to listen on {host or 'every interface'} without sign-in: no API key is configured, so "
        "anyone who reaches the port could use the chat page (approve work orders, change the documents). "
        "Set keys first, e.g. ONSITE_API_KEYS='<key>:admin:<name>,<key>:operator:<name>' (make a key with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'), or listen on 127.0.0.1, "
        "or pass --allow-open (ONSITE_API__ALLOW_OPEN=true) to serve it open on purpose.")


# --- the app ------------------------------------------------------------------------------------


def mount_ui(app: FastAPI, services: Services, settings: Settings) -> str | None:
    """Call ``ui.mount(app, services, settings)`` when the chat page is installed; returns its path."""
    try:
        import ui

        mount = getattr(ui, "mount", None)
        if mount is None:
            from ui import app as ui_app  # noqa: F401 - the page may live in ui/app.py

            mount = getattr(ui_app, "mount", None)
    except ImportError as exc:
        log.warning("chat page not available: %s", exc)
        return None
    if mount is None:
        return None
    before = {id(r) for r in app.router.routes}
    try:
        result = mount(app, services, settings)
    except Exception:  # noqa: BLE001 - the API and the OpenAI endpoint still serve without the page
        log.exception("the chat page could not be mounted; serving the APIs only")
        return None
    added = [getattr(r, "path", "") for r in app.router.routes if id(r) not in before]
    return result if isinstance(result, str) else (added[0] if added else None) or "/"


def build_app(settings: Settings, services: Services, *, ui: bool = True, **create_kwargs: Any) -> FastAPI:
    """The app ``onsite serve`` runs: probes, auth, the feature routes, /v1, the chat page."""
    from assistant.api.app import create_app
    from assistant.api.metrics import set_queue_depth
    from assistant.api.routes import install_routes
    from assistant.api.routes.turns import record_turn

    app = create_app(settings, readiness=services.readiness, services=services, **create_kwargs)
    install_routes(app)
    set_queue_depth(lambda: services.turns.turns_in_flight, queue="turns", metrics=app.state.metrics)
    services.turns.observers.append(lambda answer, tokens: record_turn(answer, tokens, app.state.metrics))
    app.state.ui_path = mount_ui(app, services, settings) if ui else None
    if not any(getattr(r, "path", None) in ("/", "") for r in app.router.routes):
        target = app.state.ui_path or ("/docs" if settings.api.docs else "/healthz")

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse(target)

    return app


def ensure_index(settings: Settings, embedder: Any, echo: Callable[[str], None]) -> None:
    """Build the bundled sample knowledge when no index exists yet; re-embed an index whose
    vectors another embedder made (before serving: until then search would be keywords only)."""
    from knowledge.builder import build_index
    from knowledge.embedding import embedded_by_other
    from knowledge.versions import IndexFolder

    folder = IndexFolder(settings.index_dir)
    live = folder.current()
    if live is not None:
        other = embedded_by_other(folder.manifest(live), embedder)
        if other is None:
            return
        # chunks whose text this embedder saw before come from the embedding cache
        echo(f"the index was embedded with {other}; re-embedding with {embedder.name} …")
        paths = None  # the live version's sources
    elif not settings.samples_dir.is_dir():
        echo(f"no index yet and no samples at {settings.samples_dir}: upload documents and start a rebuild")
        return
    else:
        echo(f"first start: building the sample knowledge from {settings.samples_dir} …")
        paths = [settings.samples_dir]
    report = build_index(paths, settings, embedder=embedder)
    echo(f"built {report.version}: {report.documents} documents, {report.chunks} chunks in {report.seconds:.1f} s")


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGINT / SIGTERM after a graceful shutdown, which would kill the
        process before the feed, the broker and the service are stopped; we stop them and exit."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

    return Server


def serve(settings: Settings | None = None, host: str | None = None, port: int | None = None, *,
          feed: FeedMode = "auto", echo: Callable[[str], None] = print, allow_open: bool = False) -> None:
    """Run everything on one port until interrupted (port 0: a free port, printed). Without API keys
    only a loopback address is served, unless ``allow_open`` (or ``api.allow_open``)."""
    import uvicorn

    from assistant.api.auth import Authenticator
    from assistant.api.first_key import ensure_first_key
    from assistant.logs import show_our_info
    from assistant.memory import limit_malloc_arenas
    from assistant.private import private_dir, restrict_umask
    from assistant.startup import api_lines, warm_up
    from assistant.wiring import build_services
    from knowledge.embedding import make_embedder

    show_our_info()
    settings = settings or Settings()
    host = host or settings.api.host
    port = settings.api.port if port is None else port
    keys = check_exposure(settings, host, allow_open)
    restrict_umask()  # every file the server writes is 0600, every folder 0700 (assistant.private)
    limit_malloc_arenas()  # before the request threads start (assistant.memory)
    private_dir(settings.home)
    first = None if keys else ensure_first_key(settings)  # no keys: a generated one opens the APIs
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))  # first, so a port in use is the first error, not the last
    except OSError as exc:
        sock.close()
        raise OnsiteError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)  # connections made before uvicorn starts wait in the backlog
    services = feed_ = fetch = watch_ = push_ = advice_ = None
    try:
        embedder = make_embedder(settings.embedding, settings.home)
        ensure_index(settings, embedder, echo)
        from tools.inspection.sample_product import ensure_sample_product  # the photo tab works on first start
        ensure_sample_product(settings.home / "inspection", settings.home / "run", echo)
        loaded, fetch = model_for_serving(settings, embedder)
        services = build_services(settings, embedder=embedder, loaded=loaded)
        warm_up(services)
        feed_ = SensorFeed(services.site, services.parts.sensor_store, settings.home / "run", feed).start()
        push_ = push_thread(settings, services)  # before the watch: its cursor starts at the alerts of now
        watch_ = WatchThread(settings, services).start()
        from assistant.advice_scheduler import start_advice
        advice_ = start_advice(services)  # daily crop advice at advice.hour (assistant/advice_scheduler.py)
        app = build_app(settings, services, authenticator=Authenticator.from_settings(
            settings, first.store() if first is not None else None))
        if push_ is not None:
            from assistant.api.routes.push import attach_dispatcher

            attach_dispatcher(app, push_.dispatcher)
            push_.start()
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
        url = f"http://{shown}:{port}"
        loaded = services.parts.loaded
        echo(f"onsite is serving on {url}/")
        echo(f"  chat page:   {url}{app.state.ui_path or ' (not installed)'}")
        echo(f"  REST API:    {url}/api/v1  (OpenAPI {url}/docs)")
        echo(f"  OpenAI API:  {url}/v1  (model 'onsite')")
        echo(f"  sensors:     {feed_.via}")
        echo(f"  site watch:  every {settings.watch.interval_s:g} s → alerts at {url}/api/v1/alerts and on the page")
        pushing = f"{', '.join(push_.dispatcher.channels)} (outbox: {url}/api/v1/push/outbox)" if push_ else None
        echo(f"  push:        {pushing or 'off (no channel configured: push.webhooks)'}")
        if settings.advice.enabled:
            echo(f"  advice:      daily at {settings.advice.hour:02d}:00 site time → {url}/api/v1/advice, Daily advice tab")
        if keys:
            echo(f"  sign-in:     required ({keys} API key{'s' if keys != 1 else ''}; page sign-in at {url}/ui-login)")
        else:
            echo("  sign-in:     none — the chat page is OPEN to anyone who reaches this address "
                 "(set ONSITE_API_KEYS to require sign-in)")
        for line in api_lines(url, keys, first):
            echo(line)
        if fetch is not None:
            echo(f"  model:       none yet — EXTRACTIVE MODE while {settings.llm.llamacpp.model!r} is fetched in the "
                 "background; answers switch to it once it is verified and loaded (progress below)")
            fetch.start()
        elif loaded.mode == "extractive":
            echo(f"  model:       none — EXTRACTIVE MODE: answers are labelled extracts ({loaded.reason})")
        else:
            echo(f"  model:       {getattr(loaded.model, 'name', loaded.backend)} ({loaded.backend})")
        config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=5, proxy_headers=False)
        _server_class()(config).run(sockets=[sock])
    finally:
        if fetch is not None:
            fetch.stop()
        if watch_ is not None:
            watch_.stop()
        if push_ is not None:
            push_.stop()
        if advice_ is not None:
            advice_.stop()
        if feed_ is not None:
            feed_.stop()
        if services is not None:
            services.close()
        sock.close()
        echo("onsite stopped")
