"""Reusable child processes that parse untrusted files under memory and time limits.

The server never parses document or photo bytes itself: a hostile file (a zip bomb, a 36 MP
PNG of 120 KB) may blow up the parser's memory, and glibc keeps what a process once held. A
``ChildPool`` keeps 1–2 worker processes (``python -m <module>``), each under an address-space
limit (RLIMIT_AS) and a per-request CPU limit, and kills one that passes its wall-clock budget.
Workers are reused across requests (a batch of documents pays the start-up once) and leave on
their own after ``idle_s`` without work.

Protocol, both ways: one JSON line, then ``payload`` raw bytes when the line says so. The child
answers every request with one line: ``{"ok": true, ...}`` or ``{"error": kind, "message": ...}``.

    pool = ChildPool("tools.inspection.decode_worker", mem_mb=768, size=2)
    reply, payload = pool.call({"op": "decode"}, data, timeout_s=20, cpu_s=20)

The child side is ``serve(handler)``: ``handler(request, payload) -> (reply, payload)``.
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the knowledge and tools packages
_DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails at once
MAX_REPLY_BYTES = 512 * 1024 * 1024  # a reply line or payload larger than this is refused
LARGE_BYTES = 1024 * 1024
STARTUP_S = 60.0  # a child not up after this long (a machine swapping hard) is given up


class ChildError(Exception):
    """The child did not answer: timed out, crashed, ran out of memory, or too busy to start."""


class ChildTimeout(ChildError):
    pass


class ChildBusy(ChildError):
    pass


class Refused(Exception):
    """Raised by a child's handler: the input is bad; the message says why (reply ``"input"``)."""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    # glibc reserves 64 MB of address space per thread arena and RLIMIT_AS counts it; BLAS
    # thread pools reserve buffers per thread.
    env["MALLOC_ARENA_MAX"] = "2"
    for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = "1"
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[key] = _DEAD_PROXY
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env


def describe_exit(returncode: int | None, stderr: str, what: str, mem_mb: int) -> str:
    """Why a child ended without answering, in words."""
    code = returncode or 0
    if code < 0:
        if -code == signal.SIGXCPU:
            return f"{what} exceeded its CPU time limit"
        if -code == signal.SIGKILL:
            return f"{what} was killed (SIGKILL: CPU time limit, or the system ran out of memory)"
        sig = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"{what} crashed ({sig}); it may have exceeded the memory limit ({mem_mb} MB)"
    if "MemoryError" in stderr or "bad_alloc" in stderr:
        return f"{what} exceeded the memory limit ({mem_mb} MB)"
    tail = stderr.strip().splitlines()
    return f"{what} failed (exit code {code}){': ' + tail[-1][:200] if tail else ''}"


class _Child:
    def __init__(self, module: str, mem_mb: int, idle_s: float, hard_as: bool) -> None:
        self.mem_mb = mem_mb
        self.stderr: BinaryIO = tempfile.TemporaryFile()
        self.env = child_env()
        args = [sys.executable, "-m", module, "--mem-mb", str(mem_mb), "--idle-s", str(idle_s)]
        if not hard_as:
            args.append("--soft-as")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=self.env, start_new_session=True,  # own process group: killpg reaches its children
        )
        self.served = 0
        self.ready = False

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait for the child's first line (it is up, limits set): start-up is not charged to
        the first request's time budget. False when it died first."""
        if self.ready:
            return True
        answer = self.receive(time.monotonic() + timeout_s)
        self.ready = answer is not None
        return self.ready

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 4000))
            return self.stderr.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.kill()
        self.stderr.close()

    def send(self, request: dict[str, Any], payload: bytes | None) -> None:
        head = dict(request, payload=len(payload) if payload else 0)
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(head).encode("utf-8") + b"\n")
        if payload:
            stdin.write(payload)
        stdin.flush()

    def receive(self, deadline: float) -> tuple[dict[str, Any], bytearray | mmap.mmap] | None:
        """The reply, or None on end of file (the child died). Raises ChildTimeout."""
        stdout = self.proc.stdout
        assert stdout is not None
        fd = stdout.fileno()
        line = bytearray()
        head: dict[str, Any] | None = None
        payload: bytearray | mmap.mmap = bytearray()
        got = 0
        while head is None or got < len(payload):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout("timed out")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            if head is None:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                line += chunk
                if b"\n" not in line:
                    if len(line) > 1024 * 1024:
                        raise ChildError("the reply is malformed")
                    continue
                first, _, rest = bytes(line).partition(b"\n")
                try:
                    head = json.loads(first)
                    want = int(head.get("payload") or 0)
                except (ValueError, AttributeError, TypeError):
                    raise ChildError("the reply is malformed") from None
                if want > MAX_REPLY_BYTES:
                    raise ChildError(f"the reply is too large ({want / 2**20:.0f} MB)")
                # One buffer, filled in place. A large one is its own mapping, returned to the
                # system when its last user lets go: malloc would keep it in the heap.
                payload = mmap.mmap(-1, want) if want >= LARGE_BYTES else bytearray(want)
                payload[:min(len(rest), want)] = rest[:want]
                got = min(len(rest), want)
            else:
                n = os.readv(fd, [memoryview(payload)[got:]])
                if not n:
                    return None
                got += n
        return head, payload


class ChildPool:
    """At most ``size`` children of ``module`` at once; callers beyond that wait (``wait_s``:
    None waits as long as it takes, a number raises ``ChildBusy`` after that many seconds)."""

    def __init__(self, module: str, mem_mb: int, size: int = 2, idle_s: float = 60.0,
                 recycle_rss_mb: float | None = None, hard_as: bool = True, what: str = "parser") -> None:
        self.module, self.mem_mb, self.size, self.idle_s = module, mem_mb, size, idle_s
        self.recycle_rss_mb = recycle_rss_mb if recycle_rss_mb is not None else mem_mb / 2
        self.hard_as, self.what = hard_as, what
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        atexit.register(self.close)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()

    def _take(self) -> _Child:
        with self._lock:
            env = child_env()
            while self._idle:
                child = self._idle.pop()
                if child.alive() and child.env == env:  # a changed environment gets a fresh child
                    return child
                child.close()
        return _Child(self.module, self.mem_mb, self.idle_s, self.hard_as)

    def _give_back(self, child: _Child, reply: dict[str, Any]) -> None:
        child.served += 1
        if (not child.alive() or reply.get("exit")
                or float(reply.get("rss_mb") or 0) > self.recycle_rss_mb or child.served >= 500):
            child.close()  # a child that grew keeps its memory: start a fresh one next time
            return
        child.stderr.seek(0)
        child.stderr.truncate()
        with self._lock:
            self._idle.append(child)

    def call(self, request: dict[str, Any], payload: bytes | None = None, *, timeout_s: float,
             cpu_s: int, wait_s: float | None = None) -> tuple[dict[str, Any], bytearray | mmap.mmap]:
        """Send one request; the child's reply line and payload. Raises ``ChildError`` (with a
        message a person can read) when the child times out, dies or cannot be had in ``wait_s``."""
        if not self._slots.acquire(timeout=wait_s):  # None: as long as it takes
            raise ChildBusy(f"all {self.size} {self.what} processes are busy")
        try:
            for attempt in range(2):
                child = self._take()
                fresh = child.served == 0
                try:
                    if not child.wait_ready(STARTUP_S):
                        why = describe_exit(child.proc.wait(), child.stderr_tail(), self.what, self.mem_mb)
                        child.close()
                        raise ChildError(why)
                    child.send(dict(request, cpu_s=cpu_s), payload)
                    answer = child.receive(time.monotonic() + timeout_s)
                except ChildTimeout:
                    child.close()
                    raise ChildTimeout(f"{self.what} timed out after {timeout_s:g} s") from None
                except ChildError:  # a malformed reply, or a child that never came up
                    child.close()
                    raise
                except BrokenPipeError:
                    answer = None
                except BaseException:
                    child.close()
                    raise
                if answer is None:
                    child.proc.wait()
                    # An idle child may have left just as we wrote: try once more with a new one.
                    if attempt == 0 and not fresh and child.proc.returncode == 0:
                        child.close()
                        continue
                    why = describe_exit(child.proc.returncode, child.stderr_tail(), self.what, self.mem_mb)
                    child.close()
                    raise ChildError(why)
                reply, data = answer
                self._give_back(child, reply)
                return reply, data
            raise ChildError(f"{self.what} could not be started")
        finally:
            self._slots.release()


# --- the child side ---------------------------------------------------------------------------

def _set_limit(which: int, soft: int, hard: int | None) -> None:
    current_soft, current_hard = resource.getrlimit(which)
    if hard is None:
        hard = current_hard
    if current_hard != resource.RLIM_INFINITY:  # never ask for more than we are allowed
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n) if n else b""
    if len(data) != n:
        raise EOFError
    return data


def serve(handler: Callable[[dict[str, Any], bytes], tuple[dict[str, Any], bytes | None]],
          argv: list[str] | None = None) -> int:
    """The child's loop: limits, then request → ``handler`` → reply, until stdin closes or
    ``--idle-s`` pass without a request. ``handler`` raises ``Refused`` for bad input
    (reported as ``{"error": "input"}``); a MemoryError ends the child after its reply."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--mem-mb", type=int, required=True)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--soft-as", action="store_true")  # hard limit left for grandchildren
    args = parser.parse_args(argv)
    # Keep the real stdout for replies; stray prints from libraries go to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    limit = args.mem_mb * 1024 * 1024
    _set_limit(resource.RLIMIT_AS, limit, None if args.soft_as else limit)
    _set_limit(resource.RLIMIT_CORE, 0, 0)

    def reply(head: dict[str, Any], payload: bytes | None = None) -> None:
        head = dict(head, payload=len(payload) if payload else 0, rss_mb=round(_rss_mb(), 1))
        out.write(json.dumps(head, ensure_ascii=False).encode("utf-8") + b"\n")
        if payload:
            out.write(payload)
        out.flush()

    reply({"ready": True})
    while True:
        ready, _, _ = select.select([stdin], [], [], args.idle_s)
        if not ready:
            return 0  # idle: leave; the parent starts a fresh child when it needs one
        line = stdin.readline()
        if not line:
            return 0
        try:
            request = json.loads(line)
            payload = _read_exact(stdin, int(request.get("payload") or 0))
        except (ValueError, EOFError):
            return 2
        used = resource.getrusage(resource.RUSAGE_SELF)
        # A CPU backstop per request, in case the parent is gone; its wall clock kills first.
        _set_limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime) + int(request.get("cpu_s") or 60), None)
        try:
            head, data = handler(request, payload)
            reply(dict(head, ok=True), data)
        except MemoryError:
            reply({"error": "memory", "message": f"exceeded the memory limit ({args.mem_mb} MB)", "exit": True})
            return 3
        except Refused as exc:
            reply({"error": "input", "message": str(exc)[:1000]})
        except RecursionError as exc:
            reply({"error": "input", "message": f"nesting too deep ({exc})"})
        except Exception as exc:  # noqa: BLE001 - a library choking on a hostile file
            text = f"{type(exc).__name__}: {exc}"[:500]
            if "bad_alloc" in text:
                reply({"error": "memory", "message": f"exceeded the memory limit ({args.mem_mb} MB)", "exit": True})
                return 3
            reply({"error": "failed", "message": text})
