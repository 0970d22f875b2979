"""Any OpenAI-compatible chat server (vLLM, llama.cpp server, a cloud endpoint) as a ChatModel.

Answers stream over SSE (``data: {chat.completion.chunk}`` ... ``data: [DONE]``); decisions use
the same stream with ``response_format: json_schema``. Connection errors, 5xx and 429 are retried
with backoff (Retry-After honoured) only before the first token reaches the caller: after that a
retry would repeat text the caller already holds, so the error is raised instead.
"""

from __future__ import annotations

import codecs
import json
import random
import re
import socket
import threading
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import ValidationError

from assistant.llm.base import (CancelledError, ChatMessage, DeadlineExceededError, GenerationOptions,
                                InvalidDecisionError, ModelBusyError, ModelError, StreamEvent, T, Timings, Usage,
                                collect)
from assistant.llm.settings import LLMSettings

if TYPE_CHECKING:
    import httpx

_MAX_BACKOFF_S = 8.0
_MAX_RETRY_AFTER_S = 30.0
_MAX_SERVER_STOPS = 4  # the OpenAI API accepts at most 4 stop strings; we enforce all of them here


class _Retry(Exception):
    """One attempt failed in a way worth another try (raised before any token was yielded)."""

    def __init__(self, error: ModelError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error, self.retry_after = error, retry_after


class OpenAICompatChatModel:
    """ChatModel over HTTP. Settings: ``llm.openai`` (``base_url`` …/v1, ``api_key`` bearer, ``model``,
    ``timeout_s`` connect and per-read, ``retries``) and the shared ``deadline_s`` (default
    per-request deadline), ``max_tokens``, ``temperature``."""

    mode = "llm"

    def __init__(self, settings: LLMSettings):
        import httpx

        self.settings = settings
        self.options = options = settings.openai
        self.name = f"openai:{options.model}"
        self.base_url = options.base_url.rstrip("/")
        self._url = f"{self.base_url}/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self._client = httpx.Client(headers=headers)
        self._backoff_s = 0.5

    def close(self) -> None:
        self._client.close()

    # -- the protocol ------------------------------------------------------------------------

    def stream(self, messages: list[ChatMessage], options: GenerationOptions | None = None) -> Iterator[StreamEvent]:
        opts = options or GenerationOptions(max_tokens=self.settings.max_tokens, temperature=self.settings.temperature)
        body = self._body(messages, opts.max_tokens, opts.temperature)
        stops = [s for s in opts.stop if s]
        if stops:
            body["stop"] = stops[:_MAX_SERVER_STOPS]
        yield from self._generate(body, opts, time.monotonic() + (opts.deadline_s or self.settings.deadline_s), stops)

    def decide(self, messages: list[ChatMessage], schema: type[T], options: GenerationOptions | None = None) -> T:
        opts = options or GenerationOptions(max_tokens=self.settings.max_tokens)
        deadline = time.monotonic() + (opts.deadline_s or self.settings.deadline_s)  # for both tries together
        convo = list(messages)
        body = self._body(convo, opts.max_tokens, 0.0)
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64] or "decision"
        json_schema = {"name": name, "schema": _closed(schema.model_json_schema()), "strict": True}
        body["response_format"] = {"type": "json_schema", "json_schema": json_schema}
        problem = ""
        for _ in range(2):
            text, _done = collect(self._generate(body, opts, deadline, []))
            try:
                # strict=False: constrained JSON may still carry raw control characters in strings
                return schema.model_validate(json.loads(_unfence(text), strict=False))
            except ValueError as e:  # json.JSONDecodeError and pydantic.ValidationError
                problem = _describe(e)
            fix = (f"That reply does not match the required JSON schema: {problem}. "
                   "Answer again with only one JSON object that matches the schema.")
            convo += [ChatMessage("assistant", text), ChatMessage("user", fix)]
            body["messages"] = _wire(convo)
        raise InvalidDecisionError(
            f"the model at {self.base_url} gave no valid {schema.__name__} decision in two tries: {problem}")

    # -- one request, retried ----------------------------------------------------------------

    def _body(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> dict[str, Any]:
        return {"model": self.options.model, "messages": _wire(messages), "stream": True,
                "stream_options": {"include_usage": True}, "max_tokens": max_tokens, "temperature": temperature}

    def _generate(self, body: dict, opts: GenerationOptions, deadline: float,
                  stops: list[str]) -> Iterator[StreamEvent]:
        start = time.perf_counter()
        attempt = 0
        while True:
            self._check(opts.cancel, deadline)
            try:
                sent = time.perf_counter()
                resp = self._send(body, deadline)
                yield from self._read(resp, opts.cancel, deadline, stops, start, sent)
                return
            except _Retry as r:
                attempt += 1
                if attempt > self.options.retries:
                    if isinstance(r.error, ModelBusyError):
                        raise r.error from r.__cause__
                    tries = f" (tried {attempt} times)" if attempt > 1 else ""
                    raise ModelError(f"{r.error}{tries}") from r.__cause__
                if r.retry_after is not None:
                    delay = min(r.retry_after, _MAX_RETRY_AFTER_S)
                else:
                    delay = min(_MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
                if time.monotonic() + delay >= deadline:
                    raise DeadlineExceededError(f"{r.error}; no time left to retry") from r.__cause__
                if opts.cancel is not None:
                    if opts.cancel.wait(delay):
                        raise CancelledError("the request was cancelled") from None
                else:
                    time.sleep(delay)

    def _check(self, cancel: threading.Event | None, deadline: float) -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("the request was cancelled")
        if time.monotonic() >= deadline:
            raise DeadlineExceededError(f"the request to the model server at {self.base_url} passed its deadline")

    def _send(self, body: dict, deadline: float) -> httpx.Response:
        import httpx

        limit = self.options.timeout_s
        remaining = max(0.01, deadline - time.monotonic())
        timeout = httpx.Timeout(min(limit, remaining), connect=min(limit, 10.0, remaining))
        try:
            request = self._client.build_request("POST", self._url, json=body, timeout=timeout)
            resp = self._client.send(request, stream=True)
        except httpx.TimeoutException as e:
            if time.monotonic() >= deadline - 0.05:
                raise DeadlineExceededError(f"no answer from {self.base_url} before the deadline") from e
            what = "accept a connection" if isinstance(e, httpx.ConnectTimeout) else "answer"
            raise _Retry(ModelError(f"the model server at {self.base_url} did not {what} within {limit:g} s")) from e
        except httpx.TransportError as e:
            raise _Retry(ModelError(f"cannot reach the model server at {self.base_url}: {e or type(e).__name__} "
                                    "(is it running? the address is the setting llm.openai.base_url)")) from e
        if resp.status_code < 300:
            return resp
        try:
            detail = _error_detail(resp.read())
        except (httpx.HTTPError, OSError):
            detail = ""
        finally:
            resp.close()
        status = resp.status_code
        message = f"the model server at {self.base_url} answered HTTP {status}" + (f": {detail}" if detail else "")
        retry_after = _retry_after(resp.headers.get("retry-after"))
        if status == 429:
            raise _Retry(ModelBusyError(message, retry_after_s=retry_after or 5.0), retry_after)
        if status >= 500:
            raise _Retry(ModelError(message), retry_after)
        if status in (401, 403):
            message += " (check the setting llm.openai.api_key)"
        elif status == 404:
            message += " (check llm.openai.base_url, which should end in /v1, and llm.openai.model)"
        raise ModelError(message)

    def _read(self, resp: httpx.Response, cancel: threading.Event | None, deadline: float, stops: list[str],
              start: float, sent: float) -> Iterator[StreamEvent]:
        import httpx

        cutter, usage, server_timings = _StopCutter(stops), {}, {}
        finish: str | None = None
        first: float | None = None
        pieces = 0
        watchdog = _Watchdog(resp, cancel, deadline)
        try:
            if "text/event-stream" in resp.headers.get("content-type", ""):
                events: Iterator[str] = _sse_data(resp.iter_bytes())
            else:  # a server that ignored stream=true: one JSON completion
                events = iter([resp.read().decode("utf-8", "replace")])
            for data in events:
                if data == "[DONE]":
                    break
                chunk = self._parse_chunk(data)
                usage = chunk.get("usage") or usage
                server_timings = chunk.get("timings") or server_timings
                for choice in chunk.get("choices") or []:
                    if choice.get("index", 0) != 0:
                        continue
                    piece = (choice.get("delta") or choice.get("message") or {}).get("content") or ""
                    if piece:
                        pieces += 1
                        first = first or time.perf_counter()
                        out, hit = cutter.feed(piece)
                        if out:
                            yield StreamEvent("token", out)
                        if hit:
                            finish = "stop_sequence"
                    finish = finish or choice.get("finish_reason")
                if finish == "stop_sequence":
                    break  # closing the response below tells the server to stop generating
                self._check(cancel, deadline)
        except (httpx.TransportError, OSError) as e:
            if watchdog.fired == "cancel":
                raise CancelledError("the request was cancelled") from None
            if watchdog.fired == "deadline" or time.monotonic() >= deadline:
                raise DeadlineExceededError(f"the model server at {self.base_url} passed the deadline") from None
            if isinstance(e, httpx.TimeoutException):
                reason = f"sent nothing for {self.options.timeout_s:g} s"
            else:
                reason = f"broke off ({e or type(e).__name__})"
            error = ModelError(f"the stream from the model server at {self.base_url} {reason}")
            if pieces == 0:
                raise _Retry(error) from e
            raise error from e
        finally:
            watchdog.stop()
            resp.close()
        if tail := cutter.flush():
            yield StreamEvent("token", tail)
        timings = _timings(server_timings, start, sent, first, time.perf_counter())
        yield StreamEvent("done", usage=_usage(usage, server_timings, pieces), timings=timings,
                          finish_reason=finish or "stop")

    def _parse_chunk(self, data: str) -> dict:
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise ModelError(f"the model server at {self.base_url} sent a malformed event: {data[:200]!r}")
        if chunk.get("error") or chunk.get("object") == "error":
            raise ModelError(f"the model server at {self.base_url} reported an error: {_error_detail(data.encode())}")
        return chunk


class _Watchdog:
    """Shuts the socket down when the caller cancels or the deadline passes, so a read blocked
    on a silent server returns at once instead of after the read timeout."""

    def __init__(self, resp: httpx.Response, cancel: threading.Event | None, deadline: float):
        self.fired: str | None = None
        self._done = threading.Event()
        stream = resp.extensions.get("network_stream")
        self._sock = stream.get_extra_info("socket") if stream is not None else None
        self._cancel, self._deadline = cancel, deadline
        threading.Thread(target=self._run, name="openai-compat-watchdog", daemon=True).start()

    def _run(self) -> None:
        while True:
            wait = 0.05 if self._cancel is not None else max(0.0, self._deadline - time.monotonic())
            if self._done.wait(wait):
                return
            if self._cancel is not None and self._cancel.is_set():
                self.fired = "cancel"
            elif time.monotonic() >= self._deadline:
                self.fired = "deadline"
            else:
                continue
            if self._sock is not None:
                try:  # the plain-socket shutdown, also under TLS: wakes the blocked recv
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                except OSError:
                    pass
            return

    def stop(self) -> None:
        self._done.set()


class _StopCutter:
    """Ends the text at the first stop string, whatever the server does with ``stop``. Holds back
    only a tail that could still grow into a stop string."""

    def __init__(self, stops: list[str]):
        self.stops, self.pending = stops, ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending = self.pending[: min(hits)], ""
            return out, True
        keep = 0
        for k in range(min(len(self.pending), max(map(len, self.stops)) - 1), 0, -1):
            if any(s.startswith(self.pending[-k:]) for s in self.stops):
                keep = k
                break
        cut = len(self.pending) - keep
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def _sse_data(chunks: Iterator[bytes]) -> Iterator[str]:
    """The ``data`` of each server-sent event. Network chunks may split lines and UTF-8
    characters anywhere: bytes go through an incremental decoder, lines are cut on ``\\n``."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer, data = "", []
    for raw in chunks:
        buffer += decoder.decode(raw)
        *lines, buffer = buffer.split("\n")
        for line in lines:
            line = line.removesuffix("\r")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
            # ":" comments (keep-alives), event:, id: and retry: carry nothing we use
    buffer += decoder.decode(b"", final=True)
    if buffer.startswith("data:"):
        data.append(buffer[5:].lstrip(" ").removesuffix("\r"))
    if data:
        yield "\n".join(data)


def _usage(usage: dict, server: dict, pieces: int) -> Usage:
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or server.get("cache_n") or 0)
    prompt = int(usage.get("prompt_tokens") or (server.get("prompt_n", 0) + server.get("cache_n", 0)))
    # without usage from the server, count content chunks (servers send about one token each)
    completion = int(usage.get("completion_tokens") or server.get("predicted_n") or pieces)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_prompt_tokens=min(cached, prompt))


def _timings(server: dict, start: float, sent: float, first: float | None, now: float) -> Timings:
    ttft = (first - sent) if first is not None else now - sent
    decode = (now - first) if first is not None else 0.0
    # queue: connection attempts and backoff before the request that answered; prompt_ms and
    # predicted_ms are the llama.cpp server's own measurements, when it sends them
    return Timings(queue_s=sent - start, ttft_s=ttft, total_s=now - start,
                   prefill_s=server["prompt_ms"] / 1000 if server.get("prompt_ms") else ttft,
                   decode_s=server["predicted_ms"] / 1000 if server.get("predicted_ms") else decode)


def _wire(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_detail(raw: bytes) -> str:
    """The message of an OpenAI-style error body ({"error": {"message"}}), else the text itself."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        err = json.loads(text)
    except ValueError:
        return text[:300]
    err = err.get("error", err) if isinstance(err, dict) else err
    if isinstance(err, dict):
        err = err.get("message") or err.get("detail") or err
    return str(err)[:300]


def _closed(schema: Any) -> Any:
    """``additionalProperties: false`` on every object, as strict json_schema mode requires."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def _unfence(text: str) -> str:
    text = text.strip()
    match = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    return match.group(1) if match else text


def _describe(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in error.errors(include_url=False)]
        return "; ".join(parts)[:500]
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON ({error.msg} at character {error.pos})"
    return str(error)[:500]
