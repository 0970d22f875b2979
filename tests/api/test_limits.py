"""Per-client rate limit (429 + Retry-After, recovery, per principal / per IP, thread safety) and
the request-body cap (413 envelope, declared or streamed)."""

from __future__ import annotations

import threading

import pytest
from fastapi import Request
from pydantic import BaseModel

from assistant.api.app import api_router
from assistant.api.envelope import ok
from assistant.api.ratelimit import RateLimitedError, TokenBucketLimiter

from .conftest import ADMIN_KEY, OPERATOR_KEY, bearer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = TokenBucketLimiter(per_minute=30, burst=3, clock=clock)  # one token per 2 s
    assert [limiter.try_acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("a") == pytest.approx(2.0)
    assert limiter.try_acquire("b") == 0.0  # another client is not affected
    clock.now += 1.0
    assert limiter.try_acquire("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.try_acquire("a") == 0.0
    clock.now += 3600
    assert [limiter.try_acquire("a") for _ in range(4)][-1] > 0  # refill stops at the burst
    with pytest.raises(RateLimitedError) as info:
        limiter.acquire("a")
    assert info.value.http_status == 429 and info.value.retry_after_s > 0


def test_disabled_limiter_allows_everything():
    limiter = TokenBucketLimiter(per_minute=0, burst=1)
    assert all(limiter.try_acquire("a") == 0.0 for _ in range(100))


def test_bucket_is_thread_safe():
    limiter = TokenBucketLimiter(per_minute=0.001, burst=50)
    granted = []
    lock = threading.Lock()

    def worker():
        for _ in range(25):
            if limiter.try_acquire("shared") == 0.0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 50


def test_idle_clients_are_forgotten():
    clock = Clock()
    limiter = TokenBucketLimiter(per_minute=60, burst=2, clock=clock, max_clients=100)
    for i in range(100):
        limiter.try_acquire(f"c{i}")
    clock.now += 10
    limiter.try_acquire("new")
    assert len(limiter) <= 100


@pytest.fixture
def limited(client):
    clock = Clock()
    client.app.state.rate_limiter = TokenBucketLimiter(per_minute=6, burst=2, clock=clock)  # one per 10 s
    return client, clock


def test_api_gives_429_with_retry_after_and_recovers(limited):
    c, clock = limited
    me = "/api/v1/auth/me"
    assert [c.get(me, headers=bearer(OPERATOR_KEY)).status_code for _ in range(2)] == [200, 200]
    r = c.get(me, headers=bearer(OPERATOR_KEY))
    assert r.status_code == 429 and r.headers["Retry-After"] == "10"
    body = r.json()
    assert body["code"] == 429 and body["data"] == {"error": "rate_limited", "retry_after_s": 10}
    # other principals and anonymous callers have their own buckets
    assert c.get(me, headers=bearer(ADMIN_KEY)).status_code == 200
    assert c.post("/api/v1/auth/wechat/login", json={"code": "x1"}).status_code == 200
    # the probes are not rate limited
    assert all(c.get("/healthz").status_code == 200 for _ in range(5))
    clock.now += 4
    r = c.get(me, headers=bearer(OPERATOR_KEY))
    assert r.status_code == 429 and r.headers["Retry-After"] == "6"
    clock.now += 6
    assert c.get(me, headers=bearer(OPERATOR_KEY)).status_code == 200


def test_bad_credentials_are_limited_by_ip(limited):
    c, _ = limited
    statuses = [c.get("/api/v1/auth/me", headers=bearer(f"made-up-key-{i:08d}-xxxx")).status_code for i in range(3)]
    assert statuses == [401, 401, 429]


def test_rate_limit_from_settings(client_factory, settings_factory):
    c = client_factory(settings_factory(rate_limit_per_minute=1, rate_limit_burst=1))
    assert c.get("/api/v1/auth/me", headers=bearer(OPERATOR_KEY)).status_code == 200
    r = c.get("/api/v1/auth/me", headers=bearer(OPERATOR_KEY))
    assert r.status_code == 429 and 55 <= int(r.headers["Retry-After"]) <= 60


class Note(BaseModel):
    text: str


@pytest.fixture
def small_body_client(client_factory, settings_factory):
    c = client_factory(settings_factory(max_upload_mb=0.001))  # 1048 bytes
    router = api_router(tags=["test"])

    @router.post("/note")
    def note(body: Note):
        return ok({"chars": len(body.text)})

    @router.post("/raw")
    async def raw(request: Request):
        return ok({"bytes": len(await request.body())})

    c.app.include_router(router)
    return c


def test_body_over_the_cap_is_413_envelope(small_body_client):
    c = small_body_client
    assert c.post("/api/v1/note", json={"text": "x" * 500}).json()["data"] == {"chars": 500}
    r = c.post("/api/v1/note", json={"text": "x" * 5000})
    assert r.status_code == 413 and r.json()["code"] == 413 and r.json()["data"]["error"] == "body_too_large"
    r = c.post("/api/v1/auth/wechat/login", content=b"{" + b" " * 4000 + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["/api/v1/note", "/api/v1/raw"])
def test_streamed_body_over_the_cap_is_413_too(small_body_client, path):
    def chunks():
        yield b'{"text": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    r = small_body_client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413 and r.json()["data"]["error"] == "body_too_large"
    ok_small = small_body_client.post("/api/v1/raw", content=iter([b"a" * 100, b"b" * 100]))
    assert ok_small.json()["data"] == {"bytes": 200}
