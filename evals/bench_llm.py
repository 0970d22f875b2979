"""Language-model speed on this machine (``onsite bench llm``).

A random-weight GGUF with the exact shapes of a real model (weights' values do not change the
cost of a matmul), quantized with llama.cpp's own quantizer, run through our runtime
(``LlamaCppChatModel``: template, queue, streaming) on a realistic retrieval prompt — system prompt,
4 evidence chunks, question, about 1,500 tokens — then a follow-up that shares the system prompt
and evidence. The same generation through a bare ``Llama.generate`` loop gives the reference
decode speed. Random weights would stop at an end token by chance: both loops ignore it and
produce exactly ``decode_tokens`` tokens.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable

from assistant.llm.base import ChatMessage, GenerationOptions, collect
from assistant.llm.gguf_synth import SHAPES, quantize, write_shaped_model
from assistant.settings import LLMSettings, Settings

SYNTH_VERSION = "v1"  # bump when gguf_synth's output changes, so cached bench models are rebuilt

SYSTEM_PROMPT = (
    "You are the assistant of a greenhouse and plant site. Answer only from the numbered evidence "
    "below and cite every statement with its marker, like [1]. If the evidence does not answer the "
    "question, say that you do not know. Answer in the language of the question, in at most five "
    "sentences. Safety rules in the evidence take precedence over convenience. "
    "你是温室和工厂现场的助手。只根据下面编号的证据回答，并用 [1] 这样的标记注明出处。"
)
_FACTS = [
    "The main irrigation pump P-101 must be inspected every 500 operating hours; check the seal for leaks.",
    "Night temperature for tomatoes should stay between 16 and 18 °C; below 14 °C fruit set drops.",
    "When relative humidity stays above 90 % for more than six hours, ventilate and heat to prevent grey mould.",
    "The dosing unit filter is replaced monthly, or earlier when the pressure drop exceeds 0.3 bar.",
    "Pesticides are stored in the locked chemical room; the log records every withdrawal with name and date.",
    "Nutrient solution EC for cucumbers is kept at 2.0–2.5 mS/cm during fruiting; pH between 5.5 and 6.0.",
    "Before maintenance on the boiler, isolate the gas supply and attach the lock-out tag to the valve.",
    "CO2 enrichment is switched off whenever the roof vents open more than 20 %.",
    "第二十一条 农药仓库应当通风良好，配备消防器材，并由专人管理。",
    "水泵运行中出现异常噪音时，应立即停机检查轴承和联轴器。",
    "夜间温度低于12 °C时，应启动加热系统并记录温度。",
    "Grease the fan bearings every 2,000 hours with lithium grease; do not over-fill the housing.",
]
QUESTIONS = (
    "How often must the irrigation pump be inspected, and what should be checked?",
    "What should I do when the humidity stays above 90 % overnight?",
)


def ensure_bench_model(shape: str, quant: str, cache_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """The quantized random-weight model, built once and kept in ``cache_dir``."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"{shape}-random-{SYNTH_VERSION}-{quant.lower()}.gguf"
    if final.is_file():
        return final
    f16 = cache_dir / f"{shape}-random-{SYNTH_VERSION}-f16.gguf"
    if not f16.is_file():
        progress(f"writing random-weight {shape} (F16) to {f16} ...")
        write_shaped_model(f16, shape)
    progress(f"quantizing to {quant} ...")
    quantize(f16, final, quant)
    f16.unlink()  # 1–3 GB, only needed for quantizing
    return final


def _evidence(tokenize: Callable[[str], list[int]], budget: int) -> list[str]:
    """Four chunks of about ``budget`` tokens each, word by word through the facts."""
    words = " ".join(_FACTS).split(" ")
    chunks, k = [], 0
    for i in range(4):
        text = f"[{i + 1}] Source: manual-{i + 1}.pdf, page {3 + i}\n"
        while len(tokenize(text + words[k % len(words)])) <= budget:
            text += words[k % len(words)] + " "
            k += 1
        chunks.append(text.rstrip())
    return chunks


def _messages(chunks: list[str], question: str) -> list[ChatMessage]:
    # Fixed part first and byte-identical between the two calls: system prompt, then evidence.
    user = "Evidence:\n" + "\n\n".join(chunks) + f"\n\nQuestion: {question}"
    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", user)]


class _PeakRss:
    """Samples this process's RSS in the background (weights are mmapped: RSS is what counts)."""

    def __init__(self, period_s: float = 0.02):
        import psutil

        self._proc, self._period, self.peak = psutil.Process(), period_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self._period)

    def __enter__(self) -> "_PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


class _Neighbours:
    """Share of the machine's CPU that other processes used during the block."""

    def __enter__(self) -> "_Neighbours":
        import psutil

        self._proc, self._ncpu = psutil.Process(), psutil.cpu_count() or 1
        self._t0, self._sys0, self._own0 = time.monotonic(), self._busy(), self._own()
        return self

    def _busy(self) -> float:
        import psutil

        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def _own(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system

    def __exit__(self, *exc: Any) -> None:
        others = (self._busy() - self._sys0) - (self._own() - self._own0)
        self.pct = max(0.0, 100 * others / ((time.monotonic() - self._t0) * self._ncpu))


def _bare_decode_tps(llm: Any, tokens: list[int], n: int, temperature: float) -> float:
    """Plain llama-cpp-python: ``Llama.generate`` (its own prefix reuse), detokenizing each token."""
    from assistant.llm.llamacpp import _SAMPLING

    t_first = t_last = 0.0
    for i, tok in enumerate(llm.generate(tokens, temp=temperature, **_SAMPLING)):
        llm.detokenize([tok])
        t_last = time.perf_counter()
        if i == 0:
            t_first = t_last
        if i + 1 >= n:
            break
    return (n - 1) / (t_last - t_first)


def run_llm_bench(shape: str = "qwen2.5-1.5b", quant: str = "Q4_K_M", *, decode_tokens: int = 64,
                  repeats: int = 5, prompt_tokens: int = 1500, temperature: float = 0.2,
                  threads: int | None = None, cache_dir: Path | None = None, model_path: Path | None = None,
                  progress: Callable[[str], None] = print) -> dict[str, Any]:
    """``model_path``: a real GGUF instead of the random-weight one (``shape`` is then only a label)."""
    from assistant.llm.llamacpp import LlamaCppChatModel

    cache = Path(cache_dir) if cache_dir else Settings().home / "bench-models"
    path = Path(model_path) if model_path else ensure_bench_model(shape, quant, cache, progress)
    settings = LLMSettings(llamacpp={"n_ctx": 4096, "n_batch": 512, "threads": threads}, max_tokens=decode_tokens,
                           temperature=temperature, deadline_s=3600, queue_depth=2)
    opts = GenerationOptions(max_tokens=decode_tokens, temperature=temperature)

    def decode_tps(done: Any) -> float:
        return (done.usage.completion_tokens - 1) / done.timings.decode_s

    with _PeakRss() as rss, _Neighbours() as neighbours:
        progress(f"loading {path.name} ...")
        model = LlamaCppChatModel(settings, path, ignore_eog=True)
        overhead = len(model.tokenize(model.render_prompt(_messages([""] * 4, QUESTIONS[0]))))
        chunks = _evidence(model.tokenize, (prompt_tokens - overhead) // 4)
        first_msgs, follow_msgs = (_messages(chunks, q) for q in QUESTIONS)
        progress("first call (cold context) ...")
        _, first = collect(model.stream(first_msgs, opts))
        progress("follow-up sharing the system prompt and evidence ...")
        _, follow = collect(model.stream(follow_msgs, opts))
        ours, bare = [], []
        follow_tokens = model.tokenize(model.render_prompt(follow_msgs))
        # Pairs run back to back on the same context (the bare loop gets the same prefix reuse), so
        # load from elsewhere on the box hits both sides of a pair alike; the ratio is the median
        # of the pairs' ratios.
        for i in range(repeats):
            progress(f"decode comparison {i + 1}/{repeats} ...")
            bare.append(_bare_decode_tps(model._llm, follow_tokens, decode_tokens, temperature))
            ours.append(decode_tps(collect(model.stream(follow_msgs, opts))[1]))
        model.close()

    ratio = statistics.median(o / b for o, b in zip(ours, bare))
    return {
        "shape": shape if model_path is None else None,
        "model": path.name,
        "quant": quant if model_path is None else None,
        "prefill_tps": round(first.usage.prefill_tokens / first.timings.prefill_s, 1),
        "decode_tps": round(statistics.median(ours), 2),
        "ttft_first_s": round(first.timings.ttft_s, 3),
        "ttft_followup_s": round(follow.timings.ttft_s, 3),
        "followup_prefill_tokens": follow.usage.prefill_tokens,
        "bare_decode_tps": round(statistics.median(bare), 2),
        "decode_ratio": round(ratio, 3),
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "prompt_tokens": first.usage.prompt_tokens,
        "followup_prompt_tokens": follow.usage.prompt_tokens,
        "decode_tokens": decode_tokens,
        "threads": model.threads,
        "file_mb": round(os.path.getsize(path) / 2**20, 1),
        # CPU used by other processes during the run, in % of the machine: figures taken above
        # ~10 % are not this machine's speed but its speed while shared.
        "other_cpu_pct": round(neighbours.pct, 1),
    }
