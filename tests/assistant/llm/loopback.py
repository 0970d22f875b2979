"""A loopback stand-in for an OpenAI-compatible chat server: a small FastAPI app on a free
127.0.0.1 port, run by uvicorn in a thread. The request's ``model`` field picks the behaviour
(one scenario per way a real server behaves or fails); ``contract`` behaves like a well-made
server and is what the ChatModel contract suite drives."""

import asyncio
import contextlib
import json
import socket
import threading
import time
from typing import Any, Iterator

USAGE = {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24,
         "prompt_tokens_details": {"cached_tokens": 16}}
DONE = b"data: [DONE]\n\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    """One ``chat.completion.chunk`` SSE event."""
    delta = {} if content is None else {"content": content}
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def usage_event(usage: dict) -> bytes:
    return f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()


def schema_example(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The simplest value that satisfies a JSON schema (what a constrained decoder could emit)."""
    root = root or schema
    if "$ref" in schema:
        return schema_example(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return schema_example(schema[key][0], root)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: schema_example(sub, root) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [schema_example(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(1, schema.get("minLength", 1))


class Server:
    """Records requests; per-scenario hit counters; a release event for incremental tests."""

    base_url: str = ""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.release = threading.Event()
        self.disconnected = threading.Event()

    def hits(self, model: str) -> int:
        return sum(1 for r in self.requests if r["model"] == model)

    def clear(self) -> None:
        self.requests.clear()
        self.headers.clear()


def _app(state: Server):  # noqa: C901 - one branch per scenario, read top to bottom
    # (no ``from __future__ import annotations`` here: FastAPI must see ``Request`` itself)
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()

    def sse(gen):
        return StreamingResponse(gen, media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        model, n = body["model"], state.hits(body["model"])

        if model == "contract":  # honours max_tokens and response_format; stops when the client leaves
            fmt = body.get("response_format")
            if fmt:
                text = json.dumps(schema_example(fmt["json_schema"]["schema"]))
                pieces, finish = [text[i:i + 4] for i in range(0, len(text), 4)], "stop"
            else:
                count = min(int(body.get("max_tokens") or 16), 2000)
                pieces, finish = [f"w{i}" if i == 0 else f" w{i}" for i in range(count)], "length"
            prompt = sum(len(m["content"].split()) for m in body["messages"])

            async def gen():
                for piece in pieces:
                    if await request.is_disconnected():
                        state.disconnected.set()
                        return
                    yield chunk(piece)
                    await asyncio.sleep(0.002)
                yield chunk(None, finish)
                yield usage_event({"prompt_tokens": prompt, "completion_tokens": len(pieces),
                                   "total_tokens": prompt + len(pieces)})
                yield DONE
            return sse(gen())

        if model == "tokens":  # first token, then wait for the test to release the rest
            async def gen():
                yield chunk("Pump 3")
                for _ in range(500):
                    if state.release.is_set():
                        break
                    await asyncio.sleep(0.01)
                yield chunk(" is running")
                yield chunk(None, "stop")
                yield usage_event(USAGE)
                yield DONE
            return sse(gen())

        if model == "split":  # the raw bytes cut every 5 bytes: inside lines and inside 泵/运
            payload = chunk("水泵") + b": keep-alive\n\n" + chunk("运行中。") + chunk(None, "stop") + DONE

            async def gen():
                for i in range(0, len(payload), 5):
                    yield payload[i:i + 5]
                    await asyncio.sleep(0.002)
            return sse(gen())

        if model == "stop":  # a server that ignores `stop`; the stop string arrives split
            async def gen():
                for piece in ["The answer", " is 42.", "\nE", "ND", " and more text"]:
                    yield chunk(piece)
                yield chunk(None, "length")
                yield DONE
            return sse(gen())

        if model.startswith("decide"):
            good = '{"action": "sensor", "reason": "需要读取传感器"}'
            bad = '{"action": "fly", "reason": 3}'
            text = {"decide-valid": good, "decide-retry": bad if n == 1 else good}.get(model, "not json {")

            async def gen():
                for i in range(0, len(text), 4):
                    yield chunk(text[i:i + 4])
                yield chunk(None, "stop")
                yield DONE
            return sse(gen())

        if model == "flaky":
            if n == 1:
                return JSONResponse({"error": {"message": "worker crashed"}}, status_code=500)
            return sse(iter([chunk("ok"), chunk(None, "stop"), DONE]))

        if model == "busy":
            if n == 1:
                return JSONResponse({"error": {"message": "queue full"}}, status_code=429, headers={"Retry-After": "1"})
            return sse(iter([chunk("ok"), chunk(None, "stop"), DONE]))

        if model == "always-busy":
            return JSONResponse({"error": {"message": "queue full"}}, status_code=429, headers={"Retry-After": "7"})

        if model == "unauthorised":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)

        if model == "stall":  # one token, then silence until the client goes away
            async def gen():
                yield chunk("Pump")
                try:
                    for _ in range(1000):
                        await asyncio.sleep(0.01)
                        if await request.is_disconnected():
                            break
                finally:
                    state.disconnected.set()
                yield DONE
            return sse(gen())

        if model == "slow-headers":
            await asyncio.sleep(1.5)
            return sse(iter([chunk("late"), DONE]))

        if model == "broken":  # tokens, then the connection dies mid-stream
            async def gen():
                yield chunk("Pump")
                yield chunk(" 3")
                await asyncio.sleep(0.05)
                raise RuntimeError("server died")
            return sse(gen())

        return JSONResponse({"error": {"message": f"unknown scenario {model}"}}, status_code=404)

    return app


@contextlib.contextmanager
def serve() -> Iterator[Server]:
    """Run the stand-in on a free loopback port for the duration of the block."""
    import uvicorn

    state = Server()
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(_app(state), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.started, "the loopback OpenAI-compatible server did not start"
    state.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        srv.should_exit = True
        thread.join(5)
