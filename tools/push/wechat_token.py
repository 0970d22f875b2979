"""The mini-program's access token for WeChat's server APIs: fetched once, cached in memory and in a
0600 file in the data home (a restart, or ``onsite watch`` next to ``onsite serve``, reuses it instead
of fetching again: WeChat counts fetches per day), renewed ``margin_s`` before it expires, by ONE
refresher (a thread lock, and a file lock across processes: concurrent senders wait for the fetch
instead of each fetching).

``POST /cgi-bin/stable_token`` is the default: the secret travels in the body, not in a URL a proxy
or a log line keeps, and its normal mode hands every caller the same token while it is valid, so our
fetch does not cut off another backend of the same app (each ``GET /cgi-bin/token`` call starts a
new token, and the old one dies five minutes later). When WeChat says a token is invalid
(40001/42001/40014), the sender calls ``invalidate``: the next ``get`` fetches again, forcing a new
token only when WeChat would hand back the one it just refused.

Neither the secret nor a token is ever logged: httpx's request line (it carries ``access_token=``)
is redacted like the login's (``assistant.api.wechat``), and errors name exception types only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from tools.http_redaction import install_redaction

try:  # one refresher across processes too; without fcntl (Windows) the thread lock still holds
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("onsite.push.wechat")

TOKEN_PATH = "/cgi-bin/token"
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"
INVALID_TOKEN_CODES = frozenset({40001, 42001, 40014})  # invalid credential, expired, invalid token
_MISCONFIGURED = {40013: "invalid appid", 40125: "invalid secret", 41002: "appid missing", 41004: "secret missing",
                  40164: "this server's IP is not in the app's IP whitelist", 89503: "this IP needs the admin's consent",
                  40243: "the app's API access is frozen"}

install_redaction()  # the access token and the secret never reach the log


class WeChatTokenError(Exception):
    """No access token: WeChat refused (``errcode``) or could not be reached. ``misconfigured`` means
    the operator must fix the app id, secret or IP whitelist; the push keeps its messages meanwhile."""

    def __init__(self, message: str, *, errcode: int | None = None, misconfigured: bool = False):
        super().__init__(message)
        self.errcode = errcode
        self.misconfigured = misconfigured

    @property
    def code(self) -> str:
        return f"wechat_token_{self.errcode}" if self.errcode is not None else "wechat_token_unreachable"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: float  # unix seconds

    def __repr__(self) -> str:  # never the token itself
        return f"AccessToken(expires_at={self.expires_at:.0f})"


class AccessTokenCache:
    """``get()`` → a valid access token (fetching when needed), ``invalidate(token)`` after WeChat refused it."""

    def __init__(self, appid: str, secret: str, base_url: str, cache_file: Path | None, *, api: str = "stable_token",
                 margin_s: float = 300.0, timeout_s: float = 10.0, clock: Callable[[], float] = time.time,
                 client: httpx.Client | None = None):
        if not appid or not secret:
            raise ValueError("an access token needs the app id and the secret")
        if api not in ("stable_token", "token"):
            raise ValueError(f"token api must be stable_token or token, not {api!r}")
        self.appid, self._secret, self.api = appid, secret, api
        self.base_url = base_url.rstrip("/")
        self.cache_file = Path(cache_file) if cache_file is not None else None
        self.margin_s, self.clock = float(margin_s), clock
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._own_client = client is None
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self._refused: str | None = None  # the last token WeChat refused: never handed out again
        self.fetches = 0  # how many times this process asked WeChat (for tests and /metrics)

    def __repr__(self) -> str:
        return f"AccessTokenCache(appid={self.appid!r}, base_url={self.base_url!r}, api={self.api!r})"

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def _fresh(self, tok: AccessToken | None) -> bool:
        return tok is not None and tok.token != self._refused and tok.expires_at - self.margin_s > self.clock()

    def get(self) -> str:
        """A token valid for at least ``margin_s`` more, or ``WeChatTokenError``."""
        current = self._current
        if self._fresh(current):
            return current.token  # type: ignore[union-attr]
        with self._lock:  # one refresher in this process; the others wait here and take its token
            if self._fresh(self._current):
                return self._current.token  # type: ignore[union-attr]
            with self._file_lock():  # ... and one across processes sharing the data home
                disk = self._read_disk()
                if self._fresh(disk):
                    self._current = disk
                    return disk.token  # type: ignore[union-attr]
                fetched = self._fetch(force=False)
                if fetched.token == self._refused and self.api == "stable_token":
                    # WeChat still hands out the token it refused: ask for a new one (rate-limited by WeChat)
                    fetched = self._fetch(force=True)
                self._current = fetched
                self._write_disk(fetched)
                return fetched.token

    def invalidate(self, token: str) -> None:
        """WeChat refused ``token`` (40001/42001/40014): never use it again; the next ``get`` fetches."""
        with self._lock:
            self._refused = token
            if self._current is not None and self._current.token == token:
                self._current = None
            log.info("WeChat refused the access token; a new one will be fetched")

    # --- WeChat -------------------------------------------------------------------------------

    def _fetch(self, force: bool) -> AccessToken:
        self.fetches += 1
        url = self.base_url + (STABLE_TOKEN_PATH if self.api == "stable_token" else TOKEN_PATH)
        try:
            if self.api == "stable_token":
                response = self._client.post(url, json={"grant_type": "client_credential", "appid": self.appid,
                                                        "secret": self._secret, "force_refresh": force})
            else:
                response = self._client.get(url, params={"grant_type": "client_credential", "appid": self.appid,
                                                         "secret": self._secret})
        except httpx.HTTPError as exc:
            log.warning("WeChat %s unreachable: %s", self.api, type(exc).__name__)
            raise WeChatTokenError(f"WeChat cannot be reached for an access token ({type(exc).__name__})") from None
        try:
            payload = json.loads(response.text)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("WeChat %s answered HTTP %d with something that is not JSON", self.api, response.status_code)
            raise WeChatTokenError(f"WeChat answered the token request with HTTP {response.status_code}") from None
        errcode = _int(payload.get("errcode"), 0)
        if errcode:
            errmsg = str(payload.get("errmsg", ""))[:200]
            if errcode in _MISCONFIGURED:
                log.error("WeChat refuses our app credentials for an access token: errcode %d (%s: %s); check "
                          "api.wechat_appid / api.wechat_secret and the IP whitelist", errcode,
                          _MISCONFIGURED[errcode], errmsg)
                raise WeChatTokenError(f"WeChat refuses the app's credentials (errcode {errcode}: "
                                       f"{_MISCONFIGURED[errcode]})", errcode=errcode, misconfigured=True)
            log.warning("WeChat refused an access token: errcode %d (%s)", errcode, errmsg)
            raise WeChatTokenError(f"WeChat refused an access token (errcode {errcode})", errcode=errcode)
        token, expires_in = payload.get("access_token"), _int(payload.get("expires_in"), 0)
        if not isinstance(token, str) or not token or len(token) > 2048 or expires_in <= 0:
            log.warning("WeChat %s answered without a token (HTTP %d)", self.api, response.status_code)
            raise WeChatTokenError("WeChat answered the token request without a token")
        log.info("fetched a WeChat access token (valid %d s)", expires_in)
        return AccessToken(token, self.clock() + expires_in)

    # --- the file cache -------------------------------------------------------------------------

    def _file_lock(self) -> "_FileLock":
        return _FileLock(self.cache_file.with_suffix(".lock") if self.cache_file and fcntl else None)

    def _read_disk(self) -> AccessToken | None:
        if self.cache_file is None:
            return None
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
            if data.get("appid") != self.appid or data.get("base_url") != self.base_url:
                return None  # another app's (or a test stand-in's) token
            return AccessToken(str(data["access_token"]), float(data["expires_at"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            log.warning("ignoring the unreadable access-token cache %s (%s)", self.cache_file.name, type(exc).__name__)
            return None

    def _write_disk(self, tok: AccessToken) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"appid": self.appid, "base_url": self.base_url, "access_token": tok.token,
                           "expires_at": tok.expires_at}, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.cache_file)
        except OSError as exc:  # the memory cache still works; the next start fetches once more
            log.warning("could not keep the access token in %s (%s)", self.cache_file.name, type(exc).__name__)


class _FileLock:
    def __init__(self, path: Path | None):
        self.path, self._fd = path, None

    def __enter__(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            self._fd = None

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return -2
