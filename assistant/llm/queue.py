"""One worker thread in front of the model: a llama.cpp context serves one request at a time.

Jobs run one at a time in submission order. At most ``depth`` jobs wait (more → ModelBusyError
with an estimate of when to retry). Each job may carry a deadline (seconds from submission,
waiting included) and a cancel event set by the caller; a waiting job that expires or is cancelled
leaves the queue without running, a running job sees it at its next ``ctx.check()`` / ``ctx.stopped``
or, inside native code, through the hook it registered with ``ctx.on_stop``.
A job streams items back to the caller's thread through ``ctx.emit``; the caller iterates the
``JobHandle`` (or calls ``result()``) and gets the job's exception re-raised in its own thread.

Plain Python, no model import: the tests drive it with fake jobs.
"""

from __future__ import annotations

import collections
import queue as _queue
import threading
import time
from typing import Any, Callable, Iterator

from assistant.llm.base import CancelledError, DeadlineExceededError, ModelBusyError, ModelError

_POLL_S = 0.05  # how often a waiting caller looks at its cancel event / deadline


class _End:
    """Last item on a job's output queue: the job's return value or its exception."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any = None, error: BaseException | None = None):
        self.value = value
        self.error = error


class JobContext:
    """What a running job sees. ``stopped`` is cheap enough to call once per generated token."""

    __slots__ = ("deadline", "cancel", "abandoned", "submitted_at", "started_at", "_put", "_on_stop", "_lock")

    def __init__(self, deadline: float | None, cancel: threading.Event | None, out: _queue.Queue):
        self.deadline = deadline  # time.monotonic() value, or None
        self.cancel = cancel
        self.abandoned = threading.Event()  # the caller stopped listening (deadline, cancel, close)
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self._put = out.put
        self._on_stop: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_stop(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` (from the caller's thread) when the job is abandoned — at once if it already
        is. A job blocked inside native code (a llama.cpp prefill batch) is stopped through this."""
        with self._lock:
            if not self.abandoned.is_set():
                self._on_stop.append(fn)
                return
        fn()

    def stop(self) -> None:
        """Mark the job abandoned and run its stop hooks (once)."""
        with self._lock:
            self.abandoned.set()
            hooks, self._on_stop = self._on_stop, []
        for fn in hooks:
            fn()

    @property
    def queue_s(self) -> float:
        return (self.started_at or time.monotonic()) - self.submitted_at

    @property
    def stopped(self) -> bool:
        return (
            self.abandoned.is_set()
            or (self.cancel is not None and self.cancel.is_set())
            or (self.deadline is not None and time.monotonic() >= self.deadline)
        )

    def check(self) -> None:
        """Raise CancelledError / DeadlineExceededError if the job should stop now."""
        if (self.cancel is not None and self.cancel.is_set()) or self.abandoned.is_set():
            raise CancelledError("request cancelled")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceededError("deadline exceeded while generating")

    def emit(self, item: Any) -> None:
        self._put(item)


class _Job:
    __slots__ = ("fn", "ctx", "out")

    def __init__(self, fn: Callable[[JobContext], Any], ctx: JobContext, out: _queue.Queue):
        self.fn, self.ctx, self.out = fn, ctx, out


class JobHandle:
    """The caller's side of one job: iterate it for emitted items, or ``result()``."""

    def __init__(self, owner: "InferenceQueue", job: _Job):
        self._owner = owner
        self._job = job
        self._end: _End | None = None

    @property
    def context(self) -> JobContext:
        return self._job.ctx

    def _next(self) -> Any:
        ctx, get = self._job.ctx, self._job.out.get
        while True:
            timeout = _POLL_S
            if ctx.deadline is not None:
                timeout = min(timeout, max(0.0, ctx.deadline - time.monotonic()))
            try:
                return get(timeout=timeout)
            except _queue.Empty:
                pass
            # Nothing arrived: the job waits or works without emitting. Give up on its behalf.
            if ctx.cancel is not None and ctx.cancel.is_set():
                self._owner._abandon(self._job)
                raise CancelledError("request cancelled") from None
            if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
                self._owner._abandon(self._job)
                waited = "running" if ctx.started_at else "waiting for the model"
                raise DeadlineExceededError(f"deadline exceeded while {waited}") from None

    def __iter__(self) -> Iterator[Any]:
        try:
            while self._end is None:
                item = self._next()
                if type(item) is _End:
                    self._end = item
                    break
                yield item
        finally:
            if self._end is None:  # the caller stopped iterating early: stop the job too
                self._owner._abandon(self._job)
        if self._end.error is not None:
            raise self._end.error

    def result(self) -> Any:
        """Wait for the job; items it emitted are dropped. Returns its value or raises its error."""
        for _ in self:
            pass
        assert self._end is not None
        return self._end.value

    def cancel(self) -> None:
        self._owner._abandon(self._job)


class InferenceQueue:
    """FIFO, one worker thread, bounded waiting room."""

    def __init__(self, depth: int = 8, *, name: str = "llm", default_job_s: float = 5.0):
        self.depth = depth
        self._waiting: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._running: _Job | None = None
        self._closed = False
        self._avg_job_s = default_job_s  # moving average of run time, for Retry-After
        self._thread = threading.Thread(target=self._work, name=f"{name}-worker", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def busy(self) -> bool:
        return self._running is not None

    def retry_after_s(self) -> float:
        with self._cond:
            ahead = len(self._waiting) + (1 if self._running else 0)
        return max(1.0, round(ahead * self._avg_job_s, 1))

    def submit(self, fn: Callable[[JobContext], Any], *, deadline_s: float | None = None,
               cancel: threading.Event | None = None) -> JobHandle:
        """Queue ``fn(ctx)``; raises ModelBusyError at once when ``depth`` jobs already wait."""
        out: _queue.Queue = _queue.Queue()
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        job = _Job(fn, JobContext(deadline, cancel, out), out)
        with self._cond:
            if self._closed:
                raise ModelError("the model is shut down")
            if len(self._waiting) >= self.depth:
                ahead = len(self._waiting) + (1 if self._running else 0)
                raise ModelBusyError(
                    f"the model is busy ({ahead} requests ahead); try again shortly",
                    retry_after_s=max(1.0, round(ahead * self._avg_job_s, 1)),
                )
            self._waiting.append(job)
            self._cond.notify()
        return JobHandle(self, job)

    def run(self, fn: Callable[[JobContext], Any], **kwargs: Any) -> Any:
        """Submit and wait for the result."""
        return self.submit(fn, **kwargs).result()

    def close(self, timeout: float | None = 5.0) -> None:
        """Refuse new jobs, fail the waiting ones, stop the running one, end the worker."""
        with self._cond:
            self._closed = True
            dropped = list(self._waiting)
            self._waiting.clear()
            running = self._running
            self._cond.notify_all()
        if running is not None:
            running.ctx.stop()
        for job in dropped:
            job.out.put(_End(error=ModelError("the model is shut down")))
        self._thread.join(timeout)

    def _abandon(self, job: _Job) -> None:
        job.ctx.stop()
        with self._cond:
            try:
                self._waiting.remove(job)  # frees its place at once
            except ValueError:
                pass

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                job = self._waiting.popleft()
                self._running = job
            ctx = job.ctx
            try:
                if ctx.abandoned.is_set():
                    continue
                if ctx.cancel is not None and ctx.cancel.is_set():
                    job.out.put(_End(error=CancelledError("request cancelled before it started")))
                    continue
                if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
                    job.out.put(_End(error=DeadlineExceededError("deadline exceeded while waiting for the model")))
                    continue
                ctx.started_at = time.monotonic()
                try:
                    value = job.fn(ctx)
                except BaseException as exc:  # handed to the caller's thread, never lost
                    job.out.put(_End(error=exc))
                else:
                    job.out.put(_End(value=value))
                self._avg_job_s = 0.7 * self._avg_job_s + 0.3 * (time.monotonic() - ctx.started_at)
            finally:
                with self._cond:
                    self._running = None
