"""Random-weight GGUF models written with the ``gguf`` package.

Weights cannot be downloaded on the development machines, so tests and speed figures use models
we write ourselves: a tiny Qwen2-architecture model that loads in milliseconds (tests), and models
with the exact shapes of real ones (speed: a matmul costs the same whatever the values are).

The vocabulary is byte-level BPE (GPT-2 byte alphabet, Qwen2 pre-tokenizer): any UTF-8 text,
Chinese included, tokenizes; a few hundred merges learned from a seed text make English pieces
longer than one byte. ChatML special tokens and a ChatML chat template make it a "chat" model.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

_SEED_TEXT = """
The greenhouse ventilation opens when the air temperature rises above the set point. Check the
pump pressure before starting irrigation, and record the reading in the maintenance log. Tomato
plants need a night temperature between sixteen and eighteen degrees; humidity above ninety
percent for several hours invites grey mould. Replace the filter of the dosing unit every month.
Operators must wear protective equipment when handling pesticides and follow the regulation on
storage of chemicals. The controller reports an alarm when the nutrient solution conductivity is
outside the configured range. 温室通风 温度 湿度 灌溉 水泵 压力 检查 记录 维护 番茄 黄瓜 病害 农药 规定
"""


@dataclass(frozen=True)
class ModelShape:
    name: str
    vocab: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    rope_theta: float = 1_000_000.0
    rms_eps: float = 1e-6
    context: int = 32768
    # False: a separate output.weight. Qwen2.5 0.5B/1.5B tie it to token_embd in config.json, but
    # the published GGUF files carry both (their sizes, 491 MB and 1.12 GB at Q4_K_M, match only so).
    tied_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# From the models' config.json (Qwen/Qwen2.5-0.5B-Instruct, Qwen/Qwen2.5-1.5B-Instruct).
SHAPES: dict[str, ModelShape] = {
    "qwen2.5-0.5b": ModelShape("qwen2.5-0.5b", vocab=151936, layers=24, hidden=896, heads=14, kv_heads=2, ffn=4864),
    "qwen2.5-1.5b": ModelShape("qwen2.5-1.5b", vocab=151936, layers=28, hidden=1536, heads=12, kv_heads=2, ffn=8960),
}
# Qwen2's own ids for the ChatML specials; the shaped vocabularies put them there too.
_QWEN_SPECIAL_BASE = 151643


def _byte_alphabet() -> list[str]:
    """GPT-2's reversible byte → printable character map (index = byte value)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def _learn_merges(text: str, n_merges: int) -> list[tuple[str, str]]:
    """Plain BPE training on ``text`` (words with their leading space, in the byte alphabet)."""
    alphabet = _byte_alphabet()
    words = Counter(
        tuple(alphabet[b] for b in w.encode("utf-8")) for w in re.findall(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+", text)
    )
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter = Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        merged: Counter = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def _vocab(vocab_size: int | None, n_merges: int = 300) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """tokens, token types, merges, special ids. ``vocab_size`` None = as small as possible;
    otherwise padded with unused tokens (as convert_hf_to_gguf does) to exactly that size."""
    from gguf import TokenType

    tokens = _byte_alphabet()
    merges = _learn_merges(_SEED_TEXT, n_merges)
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    types = [int(TokenType.NORMAL)] * len(tokens)
    base = len(tokens) if vocab_size is None else _QWEN_SPECIAL_BASE
    if vocab_size is not None and vocab_size < base + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} too small")
    while len(tokens) < base:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(int(TokenType.UNUSED))
    special = {}
    for t in SPECIAL_TOKENS:
        special[t] = len(tokens)
        tokens.append(t)
        types.append(int(TokenType.CONTROL))
    while vocab_size is not None and len(tokens) < vocab_size:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(int(TokenType.UNUSED))
    return tokens, types, [f"{a} {b}" for a, b in merges], special


def _write(path: Path, shape: ModelShape, vocab_size: int | None, dtype: type, seed: int,
           embed_std: float, mat_std: float, chat_template: str) -> Path:
    """Stream a Qwen2 GGUF to ``path`` one tensor at a time (a 1.5B F16 model never sits in RAM)."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, types, merges, special = _vocab(vocab_size)
    n_vocab = len(tokens)
    tmp = path.with_name(path.name + ".part")
    w = gguf.GGUFWriter(tmp, "qwen2")
    w.add_name(f"onsite-random-{shape.name}")
    w.add_context_length(shape.context)
    w.add_embedding_length(shape.hidden)
    w.add_block_count(shape.layers)
    w.add_feed_forward_length(shape.ffn)
    w.add_head_count(shape.heads)
    w.add_head_count_kv(shape.kv_heads)
    w.add_rope_freq_base(shape.rope_theta)
    w.add_layer_norm_rms_eps(shape.rms_eps)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == np.float16 else gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(special["<|endoftext|>"])
    w.add_eos_token_id(special["<|im_end|>"])
    w.add_pad_token_id(special["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(chat_template)

    h, hd = shape.hidden, shape.head_dim
    q_dim, kv_dim = shape.heads * hd, shape.kv_heads * hd
    # (name, numpy shape (rows = output features), std; std 0 → ones (norms) or zeros (biases))
    specs: list[tuple[str, tuple[int, ...], float | None]] = [("token_embd.weight", (n_vocab, h), embed_std)]
    mat = mat_std
    for i in range(shape.layers):
        p = f"blk.{i}."
        specs += [
            (p + "attn_norm.weight", (h,), None), (p + "attn_q.weight", (q_dim, h), mat),
            (p + "attn_q.bias", (q_dim,), 0.0), (p + "attn_k.weight", (kv_dim, h), mat),
            (p + "attn_k.bias", (kv_dim,), 0.0), (p + "attn_v.weight", (kv_dim, h), mat),
            (p + "attn_v.bias", (kv_dim,), 0.0), (p + "attn_output.weight", (h, q_dim), mat),
            (p + "ffn_norm.weight", (h,), None), (p + "ffn_gate.weight", (shape.ffn, h), mat),
            (p + "ffn_up.weight", (shape.ffn, h), mat), (p + "ffn_down.weight", (h, shape.ffn), mat),
        ]
    specs.append(("output_norm.weight", (h,), None))
    if not shape.tied_embeddings:
        specs.append(("output.weight", (n_vocab, h), embed_std))

    def tensor(shp: tuple[int, ...], std: float | None) -> np.ndarray:
        if std is None:  # norm weights: ggml keeps 1-D tensors in F32
            return np.ones(shp, dtype=np.float32)
        if std == 0.0:
            return np.zeros(shp, dtype=np.float32)
        return (rng.standard_normal(shp, dtype=np.float32) * std).astype(dtype)

    rng = np.random.default_rng(seed)
    for name, shp, std in specs:
        dt = np.float32 if (std is None or std == 0.0) else np.dtype(dtype)
        w.add_tensor_info(name, shp, np.dtype(dt), int(np.prod(shp)) * np.dtype(dt).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shp, std in specs:
        w.write_tensor_data(tensor(shp, std))
    w.close()
    os.replace(tmp, path)
    return path


def write_tiny_model(path: Path | str, *, seed: int = 0, chat_template: str = CHATML_TEMPLATE,
                     layers: int = 2, hidden: int = 64) -> Path:
    """A ~0.5 MB Qwen2 model (F32) for tests. Large embeddings make the next-token distribution
    peaked (greedy decoding is stable, not a coin toss between near-ties); matrices of std
    1/sqrt(hidden) let attention carry the context, so the answer depends on the whole prompt."""
    shape = ModelShape("tiny", vocab=0, layers=layers, hidden=hidden, heads=4, kv_heads=2, ffn=hidden * 2,
                       context=32768)
    return _write(Path(path), shape, None, np.float32, seed, embed_std=1.0, mat_std=hidden**-0.5,
                  chat_template=chat_template)


def write_shaped_model(path: Path | str, shape: ModelShape | str, *, seed: int = 0) -> Path:
    """F16 random weights with exactly the shapes of a real model (vocabulary included)."""
    if isinstance(shape, str):
        shape = SHAPES[shape]
    # std 0.02 (the usual init) keeps activations small over 28 layers: no inf/NaN in F16.
    return _write(Path(path), shape, shape.vocab, np.float16, seed, embed_std=0.02, mat_std=0.02,
                  chat_template=CHATML_TEMPLATE)


QUANT_TYPES = {"Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "Q8_0": 7, "F16": 1}  # llama_ftype values


def quantize(src: Path | str, dst: Path | str, quant: str = "Q4_K_M", threads: int | None = None) -> Path:
    """llama.cpp's own quantizer (``llama_model_quantize``), written atomically to ``dst``."""
    import ctypes
    import tempfile

    import llama_cpp

    if quant not in QUANT_TYPES:
        raise ValueError(f"unknown quantization {quant!r}; known: {', '.join(QUANT_TYPES)}")
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[quant]
    params.nthread = threads or os.cpu_count() or 1
    # llama.cpp writes a line per tensor to stderr: keep it in a file, show its tail on failure.
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if rc != 0:
            tmp.unlink(missing_ok=True)
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"llama_model_quantize failed ({rc}) for {src}:\n{tail}")
    os.replace(tmp, dst)
    return dst
