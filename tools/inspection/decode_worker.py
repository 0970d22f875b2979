"""Photos are decoded here, in a child process under memory and time limits, never in the server.

    python -m tools.inspection.decode_worker --mem-mb 1024     (started by ChildPool)

A PNG of 120 KB can inflate to 36 MP (108 MB of RGB, several copies while converting), and
glibc keeps what the server once held: six such uploads at once took the server from 2 GB to a
3.2 GB peak, 2.4 GB kept. Here at most ``DECODERS`` children decode at once, each under an
address-space limit (``MEMORY_MB``) and a wall clock (``TIMEOUT_S``); a caller waits up to
``WAIT_S`` for a free one, then gets ``ToolBusyError`` (429 on the API). What comes back is
the image scaled down to ``decoding.MAX_SIDE`` on its long side, as raw RGB bytes. The children
are reused and leave after a minute without work.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from knowledge.loaders.child import ChildBusy, ChildError, ChildPool, ChildTimeout, Refused, serve
from tools.errors import ToolBusyError
from tools.inspection.decoding import MAX_PIXELS, MAX_SIDE, InspectionError

DECODERS = 2  # photos decoded at the same time (the machine has few cores; each may take 400 MB)
MEMORY_MB = 1024  # a 40 MP RGBA PNG needs ~600 MB while being flattened onto white
TIMEOUT_S = 20.0
WAIT_S = 15.0
BUSY_RETRY_AFTER_S = 3.0

_pool = ChildPool("tools.inspection.decode_worker", MEMORY_MB, size=DECODERS, idle_s=60.0,
                  recycle_rss_mb=400, what="photo decoder")


def decode(data: bytes, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
           formats: tuple[str, ...] = ("PNG", "JPEG")) -> tuple[np.ndarray, str, tuple[int, int]]:
    """``(RGB uint8 array, format, (original width, original height))`` of a PNG or JPEG (or
    ``formats``), its long side at most ``max_side``. ``InspectionError`` for a refused or broken
    photo and a decoder that died or timed out; ``ToolBusyError`` when all decoders stay busy."""
    request = {"max_pixels": max_pixels, "max_side": max_side, "formats": list(formats)}
    try:
        reply, payload = _pool.call(request, data, timeout_s=TIMEOUT_S, cpu_s=int(TIMEOUT_S) + 5, wait_s=WAIT_S)
    except ChildBusy:
        raise ToolBusyError("photo decoding is busy; try again in a few seconds",
                            retry_after_s=BUSY_RETRY_AFTER_S) from None
    except ChildTimeout:
        raise InspectionError(f"decoding the photo took longer than {TIMEOUT_S:g} s; send a smaller "
                              "PNG or JPEG photo") from None
    except ChildError as exc:
        raise InspectionError(f"the photo could not be decoded ({exc}); send a smaller PNG or JPEG photo") from None
    if reply.get("error") == "input":
        raise InspectionError(str(reply.get("message")))
    if reply.get("error"):
        raise InspectionError(f"the photo could not be decoded ({reply.get('message')}); send a smaller "
                              "PNG or JPEG photo")
    w, h = int(reply["width"]), int(reply["height"])
    if len(payload) != w * h * 3:
        raise InspectionError("the photo decoder sent a damaged image; send the photo again")
    rgb = np.frombuffer(payload, dtype=np.uint8).reshape(h, w, 3)  # writable; the mapping goes with the array
    return rgb, str(reply["format"]), (int(reply["original_width"]), int(reply["original_height"]))


def _handle(request: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    from tools.inspection.decoding import decode_here

    try:
        im, fmt, (w, h) = decode_here(payload, max_pixels=int(request["max_pixels"]),
                                      max_side=int(request["max_side"]), formats=tuple(request["formats"]))
    except InspectionError as exc:
        raise Refused(exc.user_message) from None
    return ({"width": im.width, "height": im.height, "format": fmt, "original_width": w, "original_height": h},
            im.tobytes())


if __name__ == "__main__":
    from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401 - ready means ready

    sys.exit(serve(_handle))
