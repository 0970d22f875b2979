"""`onsite bench soak`: the real server under a bounded mixed load for minutes, as the issue's
soak asks — no 5xx, memory back within 10 % of its start, every abandoned turn released in a second.

``onsite serve`` runs as a subprocess (loopback, API keys set, the sample knowledge, its own
ONSITE_HOME). ``clients`` threads loop until the time is up, each request drawn from a seeded mix:
questions of the site evaluation set on /api/v1/chat, its SSE stream and /v1/chat/completions (plain
and streamed); requests abandoned after a short client timeout; bad inputs; plain reads. Between
requests a client pauses a little, and after a 429 as long as Retry-After says (at most 5 s).

Measured: statuses per kind (no 5xx expected), p50/p95 latency of answered questions, the server's
RSS (psutil, its child processes included) every few seconds — start after a warm-up, peak, end after
the load — and for each abandoned request, from the audit log after the server stops: seconds from
the server seeing the cancel to the slot being free (``release_s``) and from the client giving up to
the slot being free (``client_to_release_s``, matched by conversation id).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import httpx

from evals.site_questions import QUESTIONS_PATH as SITE_QUESTIONS

ROOT = Path(__file__).resolve().parents[1]
# kind → weight of the mix
MIX = {"chat": 30, "sse": 15, "v1": 12, "v1-sse": 8, "abandon": 15, "bad": 12, "read": 8}
BAD = ("empty", "too-long", "bad-conversation", "no-key", "not-json", "bad-stream-options", "bad-scope")


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


class _Server:
    """``onsite serve`` in a subprocess; its output goes to ``home/serve.log``."""

    def __init__(self, home: Path, model: str | None, keys: dict[str, str], startup_s: float):
        env = {**os.environ, "ONSITE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
               "ONSITE_LLM__FETCH_ON_START": "false", "PYTHONPATH": str(ROOT),
               "ONSITE_API_KEYS": ",".join(f"{k}:{name.split('-')[0]}:soak-{name}" for name, k in keys.items())}
        env.pop("ONSITE_CONFIG", None)
        if model:
            env.update({"ONSITE_LLM__BACKEND": "llamacpp", "ONSITE_LLM__LLAMACPP__MODEL": model})
        else:
            env["ONSITE_LLM__BACKEND"] = "extractive"
        self.log_path = home / "serve.log"
        self._log = open(self.log_path, "w", encoding="utf-8")  # a new log: the URL is read from it
        self.proc = subprocess.Popen([sys.executable, "-c", "from assistant.cli import main; main()", "serve",
                                      "--port", "0"], stdout=self._log, stderr=subprocess.STDOUT, text=True,
                                     env=env, cwd=str(ROOT))
        self.url = self._wait_url(startup_s)

    def _wait_url(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = re.search(r"onsite is serving on (http://127\.0\.0\.1:\d+)/", self.log_path.read_text("utf-8", "replace"))
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        tail = self.log_path.read_text("utf-8", "replace")[-2000:]
        raise RuntimeError(f"the server did not start within {timeout_s:.0f} s:\n{tail}")

    def rss_mb(self) -> float:
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20
        except psutil.Error:
            return 0.0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class _Client:
    """One simulated user: a seeded mix of requests until ``stop_at``."""

    def __init__(self, n: int, url: str, key: str, questions: list[str], stop_at: float, abandon_s: tuple[float, float],
                 record: Callable[[dict], None], seed: int):
        self.n, self.url, self.key, self.questions, self.stop_at = n, url, key, questions, stop_at
        self.abandon_s, self.record = abandon_s, record
        self.rng = random.Random(seed * 1000 + n)
        self.kinds, self.weights = list(MIX), list(MIX.values())

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=300, headers={"Authorization": f"Bearer {self.key}"}) as http:
            i = 0
            while time.monotonic() < self.stop_at:
                kind = self.rng.choices(self.kinds, self.weights)[0]
                if kind == "abandon":
                    kind = "abandon-" + self.rng.choice(["chat", "sse", "v1", "v1-sse"])
                conversation = f"soak-{self.n}-{i}"
                t0 = time.monotonic()
                try:
                    out = self._one(http, kind, conversation)
                except httpx.TimeoutException:
                    out = {"status": "gave-up", "gave_up_at": time.time()}
                except httpx.HTTPError as exc:
                    out = {"status": "transport-error", "problem": f"{type(exc).__name__}: {exc}"[:200]}
                out.update(kind=out.get("kind", kind), seconds=time.monotonic() - t0, conversation=conversation)
                self.record(out)
                i += 1
                pause = self.rng.uniform(0.1, 0.6)
                if out["status"] == 429:
                    pause = min(5.0, float(out.get("retry_after") or 1.0))
                time.sleep(max(0.0, min(pause, self.stop_at - time.monotonic())))

    def _question(self) -> str:
        return self.rng.choice(self.questions)

    def _one(self, http: httpx.Client, kind: str, conversation: str) -> dict[str, Any]:
        if kind.startswith("abandon-"):
            timeout = self.rng.uniform(*self.abandon_s)
            return self._ask(http, kind.removeprefix("abandon-"), conversation, httpx.Timeout(timeout, connect=5.0))
        if kind == "bad":
            return self._bad(http, self.rng.choice(BAD))
        if kind == "read":
            path = self.rng.choice(["/readyz", "/api/v1/sensors/GH-1-TEMP/latest", "/metrics", "/api/v1/auth/me"])
            return {"status": http.get(path).status_code, "kind": "read"}
        return self._ask(http, kind, conversation, None)

    def _ask(self, http: httpx.Client, face: str, conversation: str, timeout: Any) -> dict[str, Any]:
        question = self._question()
        if face in ("chat", "sse"):
            path, body = ("/api/v1/chat" if face == "chat" else "/api/v1/chat/stream"), {
                "question": question, "conversation_id": conversation}
        else:
            path, body = "/v1/chat/completions", {"model": "onsite", "conversation_id": conversation, "stream": face == "v1-sse",
                                                  "messages": [{"role": "user", "content": question}]}
        kw = {} if timeout is None else {"timeout": timeout}
        if face in ("sse", "v1-sse"):
            with http.stream("POST", path, json=body, **kw) as r:
                text = r.read().decode("utf-8", "replace")
                out = {"status": r.status_code, "retry_after": r.headers.get("Retry-After")}
                if r.status_code == 200 and "[DONE]" not in text:
                    out["problem"] = "stream without [DONE]"
                if '"type": "error"' in text or '"type":"error"' in text:
                    out["stream_error"] = text[-300:]
                return out
        r = http.post(path, json=body, **kw)
        return {"status": r.status_code, "retry_after": r.headers.get("Retry-After"),
                **({"problem": r.text[:300]} if r.status_code >= 500 else {})}

    def _bad(self, http: httpx.Client, what: str) -> dict[str, Any]:
        chat = "/api/v1/chat"
        if what == "empty":
            r = http.post(chat, json={"question": "   "})
        elif what == "too-long":
            r = http.post(chat, json={"question": "温度 " * 5000})
        elif what == "bad-conversation":
            r = http.post(chat, json={"question": self._question(), "conversation_id": "../../etc/passwd"})
        elif what == "no-key":
            r = http.post(chat, json={"question": self._question()}, headers={"Authorization": "Bearer wrong"})
        elif what == "not-json":
            r = http.post(chat, content=b"{not json", headers={"Content-Type": "application/json"})
        elif what == "bad-stream-options":
            r = http.post("/v1/chat/completions", json={"model": "onsite", "stream": True, "stream_options": "yes",
                                                         "messages": [{"role": "user", "content": "hi"}]})
        else:
            r = http.post(chat, json={"question": self._question(), "scope": {"zone": 5}})
        return {"status": r.status_code, "kind": f"bad-{what}",
                **({"problem": r.text[:300]} if r.status_code >= 500 else {})}


def _cancelled_rows(audit_db: Path, since: float = 0.0) -> dict[str, dict]:
    """Conversation id → timings of its cancelled turn since ``since`` (epoch seconds: a reused home
    holds earlier runs' rows and conversation ids); read after the server stopped."""
    if not audit_db.is_file():
        return {}
    db = sqlite3.connect(f"file:{audit_db}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT thread_id, timings FROM turns WHERE status = 'cancelled' AND ts >= ?",
                          (since,)).fetchall()
    finally:
        db.close()
    return {thread.split(":", 1)[-1]: json.loads(timings) for thread, timings in rows}


def run_soak(*, clients: int = 30, minutes: float = 10.0, model: str | None = None, home: Path | None = None,
             warmup: int = 3, warmup_minutes: float | None = None, shared_key: bool = False, abandon_s: tuple[float, float] = (0.5, 3.0), sample_s: float = 3.0, seed: int = 0,
             startup_s: float = 1800.0, progress: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Run the soak; ``model`` None = extractive answers. Returns the figures (see the module doc).
    The load runs ``warmup_minutes`` (default a fifth of ``minutes``, at most 2) before the soak's
    ``minutes``: memory 'start' is taken after it (thread stacks, allocator arenas and lazy imports
    settle under load, not under a few sequential questions); its requests count like the others.
    Each client signs in with its own operator key (30 tablets: the per-principal rate limit
    applies to each), or all with one (``shared_key``: then the rate limit refuses most requests)."""
    warmup_minutes = min(2.0, minutes / 5) if warmup_minutes is None else warmup_minutes
    own_home = home is None
    home = Path(tempfile.mkdtemp(prefix="onsite-soak-")) if home is None else home
    home.mkdir(parents=True, exist_ok=True)
    keys = {"admin": "soak-admin-" + secrets.token_hex(12)}
    keys.update({f"operator-{i}": f"soak-op{i}-" + secrets.token_hex(12) for i in range(1 if shared_key else clients)})
    questions = [json.loads(line)["question"] for line in SITE_QUESTIONS.read_text("utf-8").splitlines() if line.strip()]
    progress(f"starting the server in {home} (the first start indexes the sample knowledge)")
    t_start, started_at = time.monotonic(), time.time()
    server = _Server(home, model, keys, startup_s)
    results: list[dict] = []
    samples: list[tuple[float, float]] = []
    lock = threading.Lock()
    try:
        with httpx.Client(base_url=server.url, timeout=600,
                          headers={"Authorization": f"Bearer {keys['operator-0']}"}) as http:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                ready = http.get("/readyz").json().get("data") or {}
                if ready.get("ready") and (not model or (ready.get("model") or {}).get("mode") == "llm"):
                    break
                time.sleep(1)
            else:
                raise RuntimeError(f"the server was not ready with the model in 600 s: {ready}")
            progress(f"serving on {server.url} after {time.monotonic() - t_start:.0f} s; warming up")
            for q in questions[:warmup]:
                http.post("/api/v1/chat", json={"question": q})
        rss_idle = server.rss_mb()
        warm_at = time.monotonic() + warmup_minutes * 60
        stop_at = warm_at + minutes * 60
        sampling = threading.Event()
        rss_start = rss_idle

        def sample() -> None:
            nonlocal rss_start
            warm = False
            while not sampling.wait(sample_s):
                now = time.monotonic()
                samples.append((round(now - warm_at, 1), round(server.rss_mb(), 1)))  # seconds after the warm-up
                if not warm and now >= warm_at:
                    warm, rss_start = True, samples[-1][1]

        def record(out: dict) -> None:
            with lock:
                results.append(out)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=_Client(i, server.url, keys[f"operator-{0 if shared_key else i}"], questions,
                                                   stop_at, abandon_s, record, seed).run, daemon=True)
                   for i in range(clients)]
        progress(f"{clients} clients for {warmup_minutes} min of warm-up and {minutes} min; RSS before {rss_idle:.0f} MB")
        for t in threads:
            t.start()
        next_report = time.monotonic() + 30
        while any(t.is_alive() for t in threads) and time.monotonic() < stop_at + 600:
            for t in threads:  # after the end, the answers still being generated are waited for
                t.join(max(0.0, next_report - time.monotonic()))
            if time.monotonic() >= next_report:
                with lock:
                    n = len(results)
                progress(f"{n} requests, RSS {samples[-1][1] if samples else 0:.0f} MB")
                next_report += 30
        # let the queue drain and the collector settle before the end figure
        with httpx.Client(base_url=server.url, timeout=30) as http:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                queue = ((http.get("/readyz").json().get("data") or {}).get("queue") or {})
                if not queue.get("in_flight"):
                    break
                time.sleep(0.5)
        time.sleep(sample_s)
        rss_end = server.rss_mb()
        sampling.set()
    finally:
        code = server.stop()
    cancelled = _cancelled_rows(home / "audit.sqlite", since=started_at)
    report = _report(results, [x for x in samples if x[0] >= 0], rss_start, rss_end, cancelled, clients=clients,
                     minutes=minutes, model=model)
    report["memory_mb"]["before_load"] = round(rss_idle, 1)
    report["memory_mb"]["peak_with_warmup"] = round(max([rss_idle, *(m for _, m in samples)]), 1)
    report["warmup_minutes"] = warmup_minutes
    report["keys"] = "shared" if shared_key else "one per client"
    report["server_exit_code"] = code
    report["home"] = None if own_home else str(home)
    return report


def _report(results: list[dict], samples: list[tuple[float, float]], rss_start: float, rss_end: float,
            cancelled: dict[str, dict], *, clients: int, minutes: float, model: str | None) -> dict[str, Any]:
    statuses = Counter(str(r["status"]) for r in results)
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_kind[r["kind"]][str(r["status"])] += 1
    answered = [r["seconds"] for r in results if r["status"] == 200 and r["kind"] in ("chat", "sse", "v1", "v1-sse")]
    gave_up = [r for r in results if r["status"] == "gave-up"]
    release, from_client, missing = [], [], 0
    slowest = {conv: float(t["release_s"]) for conv, t in cancelled.items()}  # per turn: its worst measure
    for r in gave_up:
        t = cancelled.get(r["conversation"])
        if t is None:
            missing += 1  # the turn ended (or was refused) before the server saw the client leave
            continue
        release.append(float(t["release_s"]))
        if r.get("gave_up_at") and t.get("cancelled_at"):
            from_client.append(max(0.0, float(t["cancelled_at"]) + float(t["release_s"]) - r["gave_up_at"]))
            slowest[r["conversation"]] = max(slowest[r["conversation"]], from_client[-1])
    all_release = [float(t["release_s"]) for t in cancelled.values()]
    five_xx = [r for r in results if isinstance(r["status"], int) and r["status"] >= 500]
    peak = max([rss_start, rss_end, *(m for _, m in samples)])
    drift = (rss_end - rss_start) / rss_start * 100 if rss_start else None
    return {
        "clients": clients, "minutes": minutes, "model": model or "none (extractive)", "requests": len(results),
        "statuses": dict(sorted(statuses.items())), "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "five_xx": len(five_xx), "five_xx_examples": [{"kind": r["kind"], "status": r["status"],
                                                       "problem": r.get("problem", "")} for r in five_xx[:5]],
        "transport_errors": sum(r["status"] == "transport-error" for r in results),
        "problems": [r["problem"] for r in results if r.get("problem") and r["status"] not in (500, 502, 503, 504)][:5],
        "latency_s": {"answered": len(answered), "p50": _quantile(answered, 0.5), "p95": _quantile(answered, 0.95)},
        "abandoned": {
            "gave_up": len(gave_up), "cancelled_turns_audited": len(cancelled), "matched": len(release),
            "unmatched": missing,
            "release_s": {"p50": _quantile(all_release, 0.5), "max": _quantile(all_release, 1.0)},
            "client_to_release_s": {"p50": _quantile(from_client, 0.5), "max": _quantile(from_client, 1.0)},
            # turns whose slot was free a second or more after the client left (or the server saw it)
            "over_1s": sum(x >= 1.0 for x in slowest.values()),
        },
        "memory_mb": {"start": round(rss_start, 1), "peak": round(peak, 1), "end": round(rss_end, 1),
                      "end_vs_start_pct": None if drift is None else round(drift, 1),
                      "samples": samples},
        "ok": not five_xx and drift is not None and abs(drift) <= 10.0 and not any(x >= 1.0 for x in slowest.values()),
    }
