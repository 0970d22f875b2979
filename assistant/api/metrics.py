"""A small thread-safe metrics registry rendered in the Prometheus text exposition format 0.0.4,
the request middleware that feeds it, and the functions the service layer calls.

No dependency on prometheus_client: counters, gauges (set, or read from a function at scrape time)
and histograms with labels are all /metrics needs. The module-level ``REGISTRY`` is the process's;
tests and embedders may pass their own to ``MetricsMiddleware`` / ``render``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable, Iterable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TPS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        self.name, self.help, self.labelnames = name, help, tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        super().__init__(name, help, labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        if not self.labelnames:
            self._values[()] = 0.0

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_fmt(v)}" for k, v in items]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        super().__init__(name, help, labelnames)
        self._values: dict[tuple[str, ...], float | Callable[[], float]] = {}
        if not self.labelnames:
            self._values[()] = 0.0

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            current = self._values.get(key, 0.0)
            self._values[key] = (current() if callable(current) else current) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def set_function(self, fn: Callable[[], float], **labels: str) -> None:
        """Read the value from ``fn`` at every scrape (e.g. a queue's current length)."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = fn

    def value(self, **labels: str) -> float:
        with self._lock:
            v = self._values.get(self._key(labels), 0.0)
        return float(v()) if callable(v) else v

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items(), key=lambda kv: kv[0])
        out = []
        for key, v in items:
            try:
                value = float(v()) if callable(v) else v
            except Exception:  # a broken callback must not break the scrape
                value = math.nan
            out.append(f"{self.name}{_labels(self.labelnames, key)} {_fmt(value)}")
        return out


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Iterable[float] = LATENCY_BUCKETS):
        super().__init__(name, help, labelnames)
        if "le" in self.labelnames:
            raise ValueError("'le' is reserved in histograms")
        self.buckets = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))
        self._data: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}  # counts per bucket (+Inf last), [sum]

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._data.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            total[0] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            data = self._data.get(self._key(labels))
            return sum(data[0]) if data else 0

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._data.items())
        out = []
        for key, (counts, total) in items:
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), counts):
                cumulative += n
                le = f'le="{_fmt(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {cumulative}")
            out.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_fmt(total)}")
            out.append(f"{self.name}_count{_labels(self.labelnames, key)} {cumulative}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric: _Metric) -> _Metric:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None:
                if type(existing) is not type(metric) or existing.labelnames != metric.labelnames:
                    raise ValueError(f"metric {metric.name} already registered differently")
                return existing
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labelnames))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help, labelnames, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for metric in metrics:
            lines += metric.header() + metric.samples()
        return "\n".join(lines) + "\n"


class ApiMetrics:
    """The metrics onsite exposes, in one registry."""

    def __init__(self, registry: Registry | None = None):
        self.registry = registry or Registry()
        r = self.registry
        self.requests = r.counter("onsite_http_requests_total", "HTTP requests answered.", ("method", "route", "status"))
        self.latency = r.histogram(
            "onsite_http_request_duration_seconds", "Time from request to the end of the response.", ("method", "route")
        )
        self.in_flight = r.gauge("onsite_http_requests_in_flight", "HTTP requests being answered now.")
        self.queue_depth = r.gauge("onsite_queue_depth", "Requests waiting for a worker, per queue.", ("queue",))
        self.tokens_per_s = r.histogram(
            "onsite_generation_tokens_per_second", "Language-model speed per answer.", ("phase",), TPS_BUCKETS
        )
        self.abstentions = r.counter(
            "onsite_abstentions_total", "Answers withheld because the evidence did not support them.", ("reason",)
        )

    def render(self) -> str:
        return self.registry.render()


METRICS = ApiMetrics()


def observe_tokens_per_s(tokens_per_s: float, phase: str = "decode", *, metrics: ApiMetrics | None = None) -> None:
    """Record the speed of one generation (``phase``: 'decode' or 'prefill')."""
    (metrics or METRICS).tokens_per_s.observe(float(tokens_per_s), phase=phase)


def count_abstention(reason: str = "unsupported", *, metrics: ApiMetrics | None = None) -> None:
    """Count one abstention; keep ``reason`` to a few fixed words (it is a label)."""
    (metrics or METRICS).abstentions.inc(reason=reason)


def set_queue_depth(depth: float | Callable[[], float], queue: str = "llm", *, metrics: ApiMetrics | None = None) -> None:
    """Set a queue's current depth, or give a function read at every scrape (``lambda: q.waiting``)."""
    gauge = (metrics or METRICS).queue_depth
    if callable(depth):
        gauge.set_function(depth, queue=queue)
    else:
        gauge.set(depth, queue=queue)


class MetricsMiddleware:
    """Counts requests and their latency by method, route template (not the raw path: bounded label
    values) and status. Sits outside the error handling, so 4xx/5xx are counted with their status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics or METRICS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        m = self.metrics
        m.in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            m.in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            m.requests.inc(method=method, route=route, status=str(status))
            m.latency.observe(time.perf_counter() - start, method=method, route=route)
