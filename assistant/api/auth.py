"""Who is calling: our own signed bearer tokens and static API keys, roles, FastAPI dependencies.

Tokens are ``ons1.<payload>.<signature>``: base64url JSON ``{sub, role, name, via, iat, exp}``
signed with HMAC-SHA256 under a key kept in a 0600 file in the data home. API keys come from
``ONSITE_API__API_KEYS`` / ``ONSITE_API_KEYS`` (``KEY[:ROLE[:NAME]]``, comma-separated) and the keys
file (``KEY ROLE [NAME]`` per line); they are kept as SHA-256 digests and compared in constant time.
Both travel as ``Authorization: Bearer <token-or-key>``; a key may also come as ``X-API-Key``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Iterable, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import ConfigError, OnsiteError
from assistant.settings import Settings

log = logging.getLogger("onsite.api.auth")

Role = Literal["operator", "admin"]
ROLE_RANK: dict[str, int] = {"operator": 1, "admin": 2}
TOKEN_PREFIX = "ons1"
MIN_KEY_CHARS = 16
CLOCK_SKEW_S = 60


class AuthError(OnsiteError):
    """Missing, invalid or expired credentials (401)."""

    http_status = 401
    error_kind = "unauthorized"


class ForbiddenError(OnsiteError):
    """Signed in, but the role does not allow it (403)."""

    http_status = 403
    error_kind = "forbidden"


class Principal(BaseModel):
    """Who made the request. ``id`` is stable per person or key (``wx:<openid>``, ``key:<name>``)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Stable identity: 'wx:<openid>' or 'key:<name>'.")
    role: Role = Field(description="operator or admin.")
    name: str = Field("", description="Display name.")
    via: Literal["wechat", "api_key", "token"] = Field(description="How the identity was established.")

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


# --- tokens -------------------------------------------------------------------------------------


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(path: Path) -> bytes:
    """The token signing key: 32 random bytes, hex in a file created 0600 on first use. Creation is
    atomic (written aside, then hard-linked into place) so concurrent starts agree on one key."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
                log.info("created the token signing key %s", path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        log.warning("token signing key %s is readable by others; chmod 600 it", path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode()
    if len(key) < 32:
        raise ConfigError(f"token signing key {path} is too short (needs 32 bytes, hex); delete it to make a new one")
    return key


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int  # unix seconds
    expires_in: int  # seconds


class TokenSigner:
    def __init__(self, secret: bytes, ttl_s: int, clock: Callable[[], float] = time.time):
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 bytes")
        self._secret, self.ttl_s, self.clock = secret, ttl_s, clock

    def _sign(self, body: str) -> str:
        return _b64e(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, principal: Principal, ttl_s: int | None = None) -> IssuedToken:
        now = int(self.clock())
        ttl = int(ttl_s if ttl_s is not None else self.ttl_s)
        claims = {"sub": principal.id, "role": principal.role, "name": principal.name, "via": principal.via,
                  "iat": now, "exp": now + ttl}
        body = f"{TOKEN_PREFIX}.{_b64e(json.dumps(claims, separators=(',', ':'), ensure_ascii=False).encode())}"
        return IssuedToken(f"{body}.{self._sign(body)}", now + ttl, ttl)

    def verify(self, token: str) -> Principal:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise AuthError("Invalid token; sign in again.")
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(body).encode(), parts[2].encode("ascii", "replace")):
            raise AuthError("Invalid token; sign in again.")
        try:
            claims = json.loads(_b64d(parts[1]))
            exp, iat = int(claims["exp"]), int(claims["iat"])
            principal = Principal(id=claims["sub"], role=claims["role"], name=claims.get("name", ""),
                                  via=claims.get("via", "token"))
        except Exception as exc:  # signed by us but unreadable: a key reused across versions
            raise AuthError("Invalid token; sign in again.") from exc
        now = self.clock()
        if now >= exp:
            raise AuthError("Your sign-in has expired; sign in again.")
        if iat > now + CLOCK_SKEW_S:
            raise AuthError("Invalid token; sign in again.")
        return principal


# --- API keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    digest: bytes
    principal: Principal


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyStore:
    def __init__(self, entries: Iterable[tuple[str, str, str | None]] = ()):
        """``entries``: (key, role, name or None)."""
        self._keys: list[_Key] = []
        for number, (key, role, name) in enumerate(entries, 1):
            if len(key) < MIN_KEY_CHARS:
                raise ConfigError(f"API key #{number} ({name or 'unnamed'}) is shorter than {MIN_KEY_CHARS} characters; "
                                  "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
            if role not in ROLE_RANK:
                raise ConfigError(f"API key role must be one of {', '.join(ROLE_RANK)}, not {role!r}")
            digest = _digest(key)
            name = name or f"key-{digest.hex()[:8]}"
            self._keys.append(_Key(digest, Principal(id=f"key:{name}", role=role, name=name, via="api_key")))

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, presented: str) -> Principal | None:
        digest = _digest(presented)
        found = None
        for k in self._keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(k.digest, digest):
                found = k.principal
        return found


def parse_key_spec(spec: str) -> tuple[str, str, str | None]:
    """'KEY', 'KEY:ROLE' or 'KEY:ROLE:NAME'."""
    key, _, rest = spec.strip().partition(":")
    role, _, name = rest.partition(":")
    return key, (role or "operator"), (name or None)


def read_keys_file(path: Path) -> list[tuple[str, str, str | None]]:
    """One 'KEY ROLE [NAME]' per line; blank lines and '#' comments ignored."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split(None, 2)
        if len(fields) < 2:
            raise ConfigError(f"{path}:{number}: expected 'KEY ROLE [NAME]'")
        entries.append((fields[0], fields[1], fields[2].strip() if len(fields) > 2 else None))
    return entries


def keys_from_settings(settings: Settings, environ: dict[str, str] | None = None) -> KeyStore:
    environ = os.environ if environ is None else environ
    specs = [s.get_secret_value() for s in settings.api.api_keys]
    specs += [p for p in (environ.get("ONSITE_API_KEYS") or "").split(",") if p.strip()]
    entries = [parse_key_spec(s) for s in specs]
    if settings.api.keys_file is not None:
        path = settings.api.keys_file if settings.api.keys_file.is_absolute() else settings.home / settings.api.keys_file
        if not path.is_file():
            raise ConfigError(f"API keys file {path} does not exist")
        entries += read_keys_file(path)
    return KeyStore(entries)


# --- the authenticator and FastAPI dependencies ----------------------------------------------------


class Authenticator:
    def __init__(self, signer: TokenSigner, keys: KeyStore):
        self.signer, self.keys = signer, keys

    @classmethod
    def from_settings(cls, settings: Settings) -> "Authenticator":
        secret_file = settings.api.token_secret_file or settings.home / "api-token.key"
        if not secret_file.is_absolute():
            secret_file = settings.home / secret_file
        signer = TokenSigner(load_or_create_secret(secret_file), settings.api.token_ttl_s)
        return cls(signer, keys_from_settings(settings))

    def authenticate(self, credential: str) -> Principal:
        if credential.startswith(TOKEN_PREFIX + "."):
            return self.signer.verify(credential)
        principal = self.keys.lookup(credential)
        if principal is None:
            raise AuthError("Invalid API key or token.")
        return principal

    def issue(self, principal: Principal) -> IssuedToken:
        return self.signer.issue(principal)


def get_authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


_bearer = HTTPBearer(auto_error=False, description="Our token (from /api/v1/auth/wechat/login) or an API key.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A static API key.")


@dataclass(frozen=True)
class AuthResult:
    principal: Principal | None
    error: AuthError | None = None


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def resolve(request: Request) -> AuthResult:
    """Who the request's credentials belong to, or why not; never raises. Checked once per request
    (kept on ``request.state``), so the rate limiter and ``current_principal`` share it. Routes that
    only *may* be signed in (the rate limiter, login) use this and stay open in the OpenAPI doc."""
    cached = getattr(request.state, "auth_result", None)
    if cached is not None:
        return cached
    credential = _credential(request)
    if not credential:
        result = AuthResult(None, AuthError("Sign in first (Authorization: Bearer <token>)."))
    else:
        try:
            result = AuthResult(get_authenticator(request).authenticate(credential))
        except AuthError as exc:
            result = AuthResult(None, exc)
    request.state.auth_result = result
    if result.principal is not None:
        request.state.principal = result.principal
    return result


def current_principal(
    request: Request,
    _bearer_doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _key_doc: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """Dependency: the signed-in principal, or 401. (The two security parameters put the schemes
    in the OpenAPI document; the check itself is ``resolve``.)"""
    auth = resolve(request)
    if auth.principal is None:
        raise auth.error or AuthError("Sign in first.")
    return auth.principal


def require_role(role: str) -> Callable[..., Principal]:
    """Dependency factory: ``Depends(require_role("admin"))`` → the principal, or 401 / 403."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_role(role):
            raise ForbiddenError(f"This needs the {role} role.")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require_role("admin"))]
