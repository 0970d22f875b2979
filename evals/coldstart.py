"""`onsite bench coldstart`: how long a newcomer waits after a restart, as separate processes.

In a copy of a data home with a built index (``home``; default: a new temporary home where the
sample knowledge is built first, not timed as part of a start), each repetition measures:

- ``python -c pass`` (the baseline: the same figure on a quiet and a busy 2-core box differs a lot);
- ``onsite --help``;
- ``onsite serve`` (extractive, loopback, no keys configured: it uses its generated key, as after
  ``make run``): its first line, the "serving" line (the warm-up it logs, separately), the first
  answer on /api/v1/chat after "serving" and a second, different answer;
- ``onsite search`` and ``onsite ask`` (extractive) from the start of the process to its exit;
- when a GGUF model is given or configured and present: its load time alone, in a fresh process.

Medians over ``repeat`` runs, each sample kept. Run with nothing else on the machine if you can.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ("How do I lock out pump P-101?", "What is the temperature in GH-1 now?")
SEARCH = "lock out pump P-101"
SERVE_TIMEOUT_S = 300


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "ONSITE_HOME": str(home), "ONSITE_LLM__BACKEND": "extractive", "HF_HUB_OFFLINE": "1",
           "ONSITE_LLM__FETCH_ON_START": "false", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **extra}
    for name in ("ONSITE_CONFIG", "ONSITE_API_KEYS", "ONSITE_API__API_KEYS", "ONSITE_API__KEYS_FILE"):
        env.pop(name, None)
    return env


def _onsite(*args: str) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", *args]


def _wall(cmd: list[str], env: dict[str, str], timeout: float = 600) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    return seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_once(home: Path) -> dict[str, float]:
    """One start of ``onsite serve``: seconds to its first line and to "serving", the warm-up it
    logged, then the first and second answers (each a new conversation)."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(_onsite("serve", "--port", str(port), "--feed", "direct"), env=_env(home), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    result: dict[str, float] = {}
    try:
        key = None
        deadline = start + SERVE_TIMEOUT_S
        for line in proc.stdout:  # type: ignore[union-attr]
            out.append(line)
            now = time.perf_counter() - start
            result.setdefault("first_line_s", now)
            if "onsite is serving" in line:
                result["serving_s"] = now
            if m := re.search(r"warm-up: ([\d.]+) s", line):
                result["warm_up_s"] = float(m.group(1))
            if m := re.search(r'try:\s+curl -H "Authorization: Bearer (\S+)"', line):
                key = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        if "serving_s" not in result or key is None:
            raise RuntimeError("onsite serve did not start:\n" + "".join(out[-30:]))
        # keep reading its output, or a full pipe would stall the server
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            for name, question in zip(("first_answer_s", "second_answer_s"), QUESTIONS):
                t = time.perf_counter()
                reply = http.post("/api/v1/chat", json={"question": question})
                result[name] = time.perf_counter() - t
                if reply.status_code != 200:
                    raise RuntimeError(f"/api/v1/chat answered {reply.status_code}: {reply.text[:300]}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return result


MODEL_LOAD = """
import sys, time
from assistant.settings import Settings
from evals.model_choice import settings_for
from assistant.llm import load_chat_model
settings = settings_for(Settings(), sys.argv[1])
start = time.perf_counter()
loaded = load_chat_model(settings, None)
seconds = time.perf_counter() - start
print("MODE", loaded.mode, "SECONDS", seconds, "REASON", loaded.reason)
"""


def _model_load(home: Path, model: str) -> float:
    env = _env(home)
    env.pop("ONSITE_LLM__BACKEND")
    done = subprocess.run([sys.executable, "-c", MODEL_LOAD, model], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    m = re.search(r"MODE (\S+) SECONDS ([\d.]+) REASON (.*)", done.stdout)
    if done.returncode != 0 or m is None or m.group(1) != "llm":
        raise RuntimeError(f"the model {model!r} did not load: {(m and m.group(3)) or done.stderr[-500:]}")
    return float(m.group(2))


def configured_model(home: Path) -> str | None:
    """The configured GGUF when it is present, else None (nothing to time)."""
    from assistant.llm.management import check_model
    from assistant.settings import Settings

    settings = Settings(home=home)
    if settings.llm.backend != "llamacpp":
        return None
    try:
        return str(check_model(settings).path)
    except Exception:  # noqa: BLE001 - absent or refused: no load time to report
        return None


def prepare_home(source: Path | None, into: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """A copy of ``source`` (which must have a live index), or a new home with the sample index."""
    from knowledge.versions import IndexFolder

    home = into / "home"
    if source is not None:
        if IndexFolder(source / "index").current() is None:
            raise ValueError(f"{source} has no built index: build one first (onsite index build) or omit --home")
        progress(f"copying {source} …")
        shutil.copytree(source, home, ignore=shutil.ignore_patterns("*.log", "run", "first-api-key"))
        return {"home": str(source), "copied": True}
    progress("building the sample index in a new home (not timed) …")
    start = time.perf_counter()
    samples = ROOT / "knowledge" / "samples"
    _wall(_onsite("index", "build", str(samples)), _env(home))
    return {"home": None, "copied": False, "index_build_s": round(time.perf_counter() - start, 2)}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def run_coldstart(home: Path | None = None, repeat: int = 3, model: str | None = None,
                  progress: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}

    def keep(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(round(seconds, 3))

    with tempfile.TemporaryDirectory(prefix="onsite-coldstart-") as tmp:
        source = prepare_home(home, Path(tmp), progress)
        work = Path(tmp) / "home"
        model = model or configured_model(work)
        load_before = os.getloadavg()
        for r in range(1, repeat + 1):
            progress(f"run {r}/{repeat} …")
            env = _env(work)
            keep("baseline_python_s", _wall([sys.executable, "-c", "pass"], env))
            keep("help_s", _wall(_onsite("--help"), env))
            for name, seconds in _serve_once(work).items():
                keep(name, seconds)
            keep("search_s", _wall(_onsite("search", SEARCH), env))
            keep("ask_s", _wall(_onsite("ask", QUESTIONS[0]), env))
            if model:
                keep("model_load_s", _model_load(work, model))
        load_after = os.getloadavg()
    medians = {name: _median(values) for name, values in samples.items()}
    return {
        "repeat": repeat, "mode": "extractive", "model": model, "source": source, "cpus": os.cpu_count(),
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "median": medians, "samples": samples,
        "target": {"first_answer_s": 3.0,
                   "met": medians.get("first_answer_s") is not None and medians["first_answer_s"] <= 3.0},
    }
