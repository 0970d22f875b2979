"""Plain text files, and the text decoding shared with the Markdown and HTML loaders."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.errors import IngestError
from knowledge.loaders.metadata import Parsed
from knowledge.loaders.pdf_clean import clean_text, split_blocks
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HAN = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def decode_bytes(data: bytes, source: str) -> tuple[str, list[str]]:
    """Text from bytes: BOM, else UTF-8, else GB18030 (Chinese Windows files), else cp1252."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), []
    if b"\x00" in data[:65536]:
        raise IngestError(source, "binary data (NUL bytes) in a text file")
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
        non_ascii = [ch for ch in text if ord(ch) > 127]
        # Latin-1 bytes often decode as GB18030 too, into nonsense Han: demand mostly Han.
        if non_ascii and len(_HAN.findall(text)) >= 0.7 * len(non_ascii):
            return text, ["decoded as GB18030 (not UTF-8)"]
    except UnicodeDecodeError:
        pass
    return data.decode("cp1252", errors="replace"), ["not UTF-8 or GB18030; decoded as cp1252"]


def read_text(path: Path, source: str) -> tuple[str, list[str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(source, f"cannot read file: {exc.strerror or exc}") from exc
    return decode_bytes(data, source)


def load_text(path: Path, source: str, settings: IngestSettings) -> Parsed:
    """Paragraphs split on blank lines; clause markers, numbered sections and bullets start
    their own block; lines inside a paragraph are joined (no space between Chinese lines)."""
    text, warnings = read_text(path, source)
    blocks = [Block(kind=kind, text=body) for kind, body in split_blocks(clean_text(text), use_widths=False)]
    return Parsed(blocks=blocks, warnings=warnings)
