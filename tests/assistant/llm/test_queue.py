"""InferenceQueue with plain Python jobs: order, bounded depth, deadlines, cancellation, streaming."""

from __future__ import annotations

import threading
import time

import pytest

from assistant.llm.base import CancelledError, DeadlineExceededError, ModelBusyError, ModelError
from assistant.llm.queue import InferenceQueue


@pytest.fixture
def q():
    queue = InferenceQueue(depth=2)
    yield queue
    queue.close()


def _blocker(q: InferenceQueue):
    """Occupy the worker until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def job(ctx):
        started.set()
        release.wait(10)
        return "blocker"

    handle = q.submit(job)
    assert started.wait(5)
    return release, handle


def _ticker(log: list, n: int = 10_000, period: float = 0.002):
    def job(ctx):
        try:
            for i in range(n):
                ctx.check()
                ctx.emit(i)
                time.sleep(period)
        finally:
            log.append("ended")
        return "finished"

    return job


def test_jobs_run_one_at_a_time_in_submission_order(q):
    q.depth = 5
    release, blocker = _blocker(q)
    ran, active, overlap = [], [0], []

    def job(i):
        def run(ctx):
            active[0] += 1
            overlap.append(active[0])
            time.sleep(0.01)
            ran.append(i)
            active[0] -= 1
            return i * 10
        return run

    handles = [q.submit(job(i)) for i in range(4)]
    assert q.waiting == 4 and ran == []
    release.set()
    assert [h.result() for h in handles] == [0, 10, 20, 30]
    assert blocker.result() == "blocker"
    assert ran == [0, 1, 2, 3]
    assert max(overlap) == 1


def test_full_queue_refuses_with_retry_after(q):
    release, _ = _blocker(q)
    waiting = [q.submit(lambda ctx: "ok") for _ in range(2)]
    with pytest.raises(ModelBusyError) as info:
        q.submit(lambda ctx: "refused")
    assert info.value.retry_after_s >= 1.0
    assert info.value.http_status == 429
    release.set()
    assert [h.result() for h in waiting] == ["ok", "ok"]
    assert q.submit(lambda ctx: "room again").result() == "room again"


def test_deadline_while_waiting_fails_fast_without_running(q):
    release, _ = _blocker(q)
    ran = threading.Event()
    start = time.monotonic()
    handle = q.submit(lambda ctx: ran.set(), deadline_s=0.1)
    with pytest.raises(DeadlineExceededError, match="waiting"):
        handle.result()
    assert time.monotonic() - start < 2.0  # did not wait for the blocker
    assert q.waiting == 0  # its place was freed at once
    release.set()
    q.submit(lambda ctx: None).result()  # the worker has passed the expired job
    assert not ran.is_set()


def test_deadline_while_running_stops_the_job(q):
    log: list = []
    handle = q.submit(_ticker(log), deadline_s=0.15)
    items = []
    with pytest.raises(DeadlineExceededError):
        for item in handle:
            items.append(item)
    assert 0 < len(items) < 10_000
    assert q.submit(lambda ctx: "next").result() == "next"  # worker is free again
    assert log == ["ended"]


def test_cancel_waiting_job_drops_it(q):
    release, _ = _blocker(q)
    cancel, ran = threading.Event(), threading.Event()
    handle = q.submit(lambda ctx: ran.set(), cancel=cancel)
    threading.Timer(0.05, cancel.set).start()
    with pytest.raises(CancelledError):
        handle.result()
    assert q.waiting == 0
    release.set()
    q.submit(lambda ctx: None).result()
    assert not ran.is_set()


def test_cancel_running_job_stops_at_next_check(q):
    log: list = []
    cancel = threading.Event()
    handle = q.submit(_ticker(log), cancel=cancel)
    items = []
    with pytest.raises(CancelledError):
        for item in handle:
            items.append(item)
            if len(items) == 3:
                cancel.set()
    assert 3 <= len(items) < 100  # items already queued still arrive, then the error
    q.submit(lambda ctx: None).result()
    assert log == ["ended"]


def test_items_stream_to_the_callers_thread_in_order(q):
    worker_threads = set()

    def job(ctx):
        worker_threads.add(threading.current_thread())
        for i in range(100):
            ctx.emit(i)
        return "done"

    handle = q.submit(job)
    assert list(handle) == list(range(100))
    assert handle.result() == "done"
    assert threading.current_thread() not in worker_threads


def test_job_exception_is_raised_in_the_caller(q):
    def job(ctx):
        ctx.emit("partial")
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for item in q.submit(job):
            got.append(item)
    assert got == ["partial"]
    assert q.submit(lambda ctx: 1).result() == 1  # the worker survived


def test_caller_that_stops_listening_stops_the_job(q):
    log: list = []
    for item in q.submit(_ticker(log)):
        if item == 2:
            break
    q.submit(lambda ctx: None).result()
    assert log == ["ended"]


def test_close_fails_waiting_jobs_and_refuses_new_ones():
    q = InferenceQueue(depth=3)
    release, _ = _blocker(q)
    waiting = q.submit(lambda ctx: "never")
    threading.Timer(0.05, release.set).start()
    q.close()
    with pytest.raises(ModelError, match="shut down"):
        waiting.result()
    with pytest.raises(ModelError, match="shut down"):
        q.submit(lambda ctx: None)
