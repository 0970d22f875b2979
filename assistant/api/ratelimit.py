"""Request limits: a per-client token bucket (429 + Retry-After) and a request-body size cap (413).

A client is the signed-in principal when the credentials are valid, else the peer IP (behind a
reverse proxy, run uvicorn with ``--forwarded-allow-ips`` so the IP is the real client's).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.auth import resolve
from assistant.api.envelope import error_response
from assistant.errors import OnsiteError


class RateLimitedError(OnsiteError):
    """This client sent more requests than its rate allows (429 + Retry-After)."""

    http_status = 429
    error_kind = "rate_limited"

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TokenBucketLimiter:
    """``burst`` requests at once, refilled at ``per_minute / 60`` per second, per key. Thread-safe;
    idle full buckets are forgotten when more than ``max_clients`` keys are held."""

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000):
        self.rate = per_minute / 60.0
        self.capacity = float(max(1, burst))
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, last refill time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def try_acquire(self, key: str, cost: float = 1.0) -> float:
        """0.0 when allowed (and the tokens are taken), else the seconds until it would be."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                if len(self._buckets) > self.max_clients:
                    self._prune(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def acquire(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens or raise ``RateLimitedError``."""
        wait = self.try_acquire(key, cost)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimitedError(f"Too many requests; try again in {seconds} s.", retry_after_s=wait)

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.rate
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]
        if len(self._buckets) > self.max_clients:  # still too many: drop the longest idle
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: len(self._buckets) - self.max_clients]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def get_rate_limiter(request: Request) -> TokenBucketLimiter | None:
    return getattr(request.app.state, "rate_limiter", None)


def rate_limit(request: Request) -> None:
    """Dependency: one token from the caller's bucket (principal, else IP), or 429."""
    limiter = get_rate_limiter(request)
    if limiter is None:
        return
    auth = resolve(request)
    key = f"principal:{auth.principal.id}" if auth.principal is not None else f"ip:{client_ip(request)}"
    limiter.acquire(key)


class BodyLimitMiddleware:
    """413 envelope for request bodies over ``max_bytes``: at once when Content-Length says so, or as
    soon as a streamed (chunked) body passes the limit, whatever the endpoint was doing with it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, scope: Scope):
        mb = self.max_bytes / (1024 * 1024)
        return error_response(413, f"The request is larger than the {mb:g} MB this server accepts.",
                              error="body_too_large", max_bytes=self.max_bytes, scope=scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._too_large(scope)(scope, receive, send)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the app answers to the broken read, the client gets our 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._too_large(scope)(scope, receive, send)


class _BodyTooLarge(OnsiteError):
    http_status = 413
    error_kind = "body_too_large"
