"""Server-sent events over an HTTP/1.1 chunked response, as the mini-program reads them.

Framing: one event per ``data: <json>\\n\\n`` (JSON on one line, UTF-8, not ASCII-escaped), comment
lines ``: ping`` as keep-alives while nothing else is sent, and ``data: [DONE]\\n\\n`` last.
``X-Accel-Buffering: no`` tells nginx-style proxies not to buffer; no compression on these routes.

``wx.request({enableChunked: true})`` hands the client ArrayBuffer chunks whose edges fall
anywhere — inside an event, inside a multi-byte UTF-8 character. ``SSEDecoder`` is the reference
client: it buffers bytes, decodes UTF-8 incrementally and yields whole events only; the tests
feed it responses cut at every byte. (In a mini-program the same is done with a streaming
``TextDecoder``-like buffer: keep the undecoded tail, split on a blank line.)
"""

from __future__ import annotations

import codecs
import json
from typing import Any

SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"
HEARTBEAT_S = 15.0



def sse_event(payload: Any) -> bytes:
    """One ``data:`` event; JSON never contains a raw newline, so one line is enough."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


class SSEDecoder:
    """Incremental parser: ``feed(chunk)`` returns the events completed by this chunk, each the
    parsed JSON of its data, or the string ``"[DONE]"``. Comments and other fields are skipped."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._text = ""
        self.done = False

    def feed(self, chunk: bytes) -> list[Any]:
        self._text += self._decoder.decode(chunk)
        self._text = self._text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in self._text else self._text
        events = []
        while "\n\n" in self._text:
            block, self._text = self._text.split("\n\n", 1)
            data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
            if not data:
                continue
            text = "\n".join(data)
            if text == "[DONE]":
                self.done = True
                events.append("[DONE]")
            else:
                events.append(json.loads(text))
        return events

    def close(self) -> None:
        """Raise if the stream ended inside an event or a character."""
        self._decoder.decode(b"", final=True)
        if self._text.strip():
            raise ValueError(f"stream ended inside an event: {self._text[:80]!r}")


def parse_sse(body: bytes) -> list[Any]:
    """All events of a complete body."""
    decoder = SSEDecoder()
    events = decoder.feed(body)
    decoder.close()
    return events
