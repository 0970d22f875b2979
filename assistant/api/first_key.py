"""The first API key: a way into the APIs after a plain ``make run`` (no keys configured).

Without keys the chat page is open on loopback, but every API call needs a key, so a newcomer
had no way to call the API at all. On the first start without keys, ``onsite serve`` makes one
admin key (``first-key``), keeps it in a 0600 file in the data home and reuses it on later
starts. It opens the APIs only: the page stays open (the page asks for a key only when keys are
*configured*, ``Authenticator.keys``). When keys are configured nothing is generated and an
existing file is ignored — the operator's keys are then the only way in.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from assistant.api.auth import MIN_KEY_CHARS, KeyStore, keys_from_settings
from assistant.private import private_dir
from assistant.settings import Settings

log = logging.getLogger("onsite.api.auth")

FIRST_KEY_FILE = "first-api-key"
FIRST_KEY_NAME = "first-key"
FIRST_KEY_ROLE = "admin"


@dataclass(frozen=True)
class FirstKey:
    key: str
    path: Path
    created: bool  # made on this start (else read from the file)

    def store(self) -> KeyStore:
        return KeyStore([(self.key, FIRST_KEY_ROLE, FIRST_KEY_NAME)])


def first_key_path(settings: Settings) -> Path:
    return settings.home / FIRST_KEY_FILE


def ensure_first_key(settings: Settings) -> FirstKey | None:
    """The generated key when no API key is configured (made on first use), else None."""
    if len(keys_from_settings(settings)):
        return None
    path = first_key_path(settings)
    key = _read(path)
    if key is not None:
        return FirstKey(key, path, created=False)
    private_dir(path.parent)
    key = secrets.token_urlsafe(32)  # 43 characters
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic: two servers started at once agree on one key
        except FileExistsError:
            return FirstKey(_read(path) or key, path, created=False)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("created the first API key (admin, %r) in %s", FIRST_KEY_NAME, path)
    return FirstKey(key, path, created=True)


def _read(path: Path) -> str | None:
    """The key in ``path``, or None when there is no usable one (missing, empty or too short: it
    is then made anew, after a warning for a file someone edited)."""
    try:
        os.chmod(path, 0o600)  # an older or hand-made file is tightened, content untouched
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if len(text) >= MIN_KEY_CHARS and not any(c.isspace() for c in text):
        return text
    log.warning("%s does not hold a usable key (%d+ characters, no spaces); making a new one", path, MIN_KEY_CHARS)
    path.unlink()
    return None
