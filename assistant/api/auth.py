"""Who is calling: our own signed bearer tokens and static API keys, roles, FastAPI dependencies.

Tokens are ``ons1.<payload>.<signature>``: base64url JSON ``{sub, role, name, via, iat, exp, sid, sxp[, kfp]}``
signed with HMAC-SHA256 under a key kept in a 0600 file in the data home. Each names a server-side
session (``sid``, ``assistant.api.sessions``) that sign-out or an admin can end, and lives a short time
(``api.token_ttl_s``): it is renewed while the session lasts, never past the session's absolute end
(``sxp``, ``api.session_max_s``). A token made from an API key carries a keyed fingerprint of that key
(``kfp``, never the key), so removing the key from the configuration ends its sessions.
API keys come from ``ONSITE_API__API_KEYS`` / ``ONSITE_API_KEYS`` (``KEY[:ROLE[:NAME]]``,
comma-separated) and the keys file (``KEY ROLE [NAME]`` per line); they are kept as SHA-256 digests
and compared in constant time. Both travel as ``Authorization: Bearer <token-or-key>``; a key may
also come as ``X-API-Key``.
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
from typing import Annotated, Any, Callable, Iterable, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.sessions import SessionRecord, SessionStore
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
    session_id: str | None = None
    session_expires_at: int | None = None  # the session's absolute end: renewal stops there


EXPIRED = "Your sign-in has expired; sign in again."
SESSION_ENDED = "Your session has ended; sign in again."
INVALID = "Invalid token; sign in again."


class TokenSigner:
    def __init__(self, secret: bytes, ttl_s: int, clock: Callable[[], float] = time.time):
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 bytes")
        self._secret, self.ttl_s, self.clock = secret, ttl_s, clock

    def _sign(self, body: str) -> str:
        return _b64e(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def key_fingerprint(self, digest: bytes) -> str:
        """What a token says of the API key it came from: keyed with the signing secret, so a
        token's holder cannot test guesses of the key against it offline."""
        return _b64e(hmac.new(self._secret, b"onsite-key-fp:" + digest, hashlib.sha256).digest()[:12])

    def issue(self, principal: Principal, ttl_s: int | None = None, *, sid: str | None = None,
              session_expires_at: float | None = None, key_fp: str | None = None) -> IssuedToken:
        now = int(self.clock())
        ttl = int(ttl_s if ttl_s is not None else self.ttl_s)
        exp = now + ttl
        claims: dict[str, Any] = {"sub": principal.id, "role": principal.role, "name": principal.name,
                                  "via": principal.via, "iat": now, "exp": exp}
        if sid is not None:
            sxp = int(session_expires_at) if session_expires_at is not None else exp
            exp = min(exp, sxp)
            claims.update(exp=exp, sid=sid, sxp=sxp)
            if key_fp is not None:
                claims["kfp"] = key_fp
        body = f"{TOKEN_PREFIX}.{_b64e(json.dumps(claims, separators=(',', ':'), ensure_ascii=False).encode())}"
        return IssuedToken(f"{body}.{self._sign(body)}", exp, exp - now, sid,
                           claims.get("sxp"))

    def claims(self, token: str, *, check_expiry: bool = True) -> dict[str, Any]:
        """The claims of a token we signed (signature, shape, expiry and issue time checked), or AuthError."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise AuthError(INVALID)
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(body).encode(), parts[2].encode("ascii", "replace")):
            raise AuthError(INVALID)
        try:
            claims = json.loads(_b64d(parts[1]))
            claims["exp"], claims["iat"] = int(claims["exp"]), int(claims["iat"])
            claims["principal"] = Principal(id=claims["sub"], role=claims["role"], name=claims.get("name", ""),
                                            via=claims.get("via", "token"))
        except Exception as exc:  # signed by us but unreadable: a key reused across versions
            raise AuthError(INVALID) from exc
        now = self.clock()
        if check_expiry and now >= claims["exp"]:
            if "sxp" in claims and claims["exp"] >= int(claims["sxp"]):
                raise AuthError("Your session has reached its time limit; sign in again.")
            raise AuthError(EXPIRED)
        if claims["iat"] > now + CLOCK_SKEW_S:
            raise AuthError(INVALID)
        return claims

    def verify(self, token: str) -> Principal:
        """Signature and expiry only: who the token names. ``Authenticator.verify_token`` also
        checks its session."""
        return self.claims(token)["principal"]


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

    @property
    def entries(self) -> list[_Key]:
        return list(self._keys)

    def match(self, presented: str) -> _Key | None:
        digest = _digest(presented)
        found = None
        for k in self._keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(k.digest, digest):
                found = k
        return found

    def lookup(self, presented: str) -> Principal | None:
        found = self.match(presented)
        return found.principal if found is not None else None


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


SESSIONS_FILE = "sessions.sqlite"
SESSION_LIMIT = "Your session has reached its time limit; sign in again."


class Authenticator:
    """Checks credentials and issues tokens, each with its session in ``sessions``."""

    def __init__(self, signer: TokenSigner, keys: KeyStore, sessions: SessionStore | None = None,
                 session_max_s: int = 12 * 3600, page_idle_s: int | None = None, api_only_keys: KeyStore | None = None):
        self.signer, self.keys, self.session_max_s = signer, keys, int(session_max_s)
        # Keys that open the APIs but are not "configured" (the page stays open, no page sign-in
        # with them): the key ``onsite serve`` generates when none is configured (api/first_key.py).
        self.api_only_keys = api_only_keys or KeyStore()
        self.page_idle_s = int(page_idle_s if page_idle_s is not None else signer.ttl_s)
        self.sessions = sessions if sessions is not None else SessionStore(None, clock=signer.clock)
        self._key_fps = [(signer.key_fingerprint(k.digest).encode(), k.principal) for k in keys.entries]

    @classmethod
    def from_settings(cls, settings: Settings, api_only_keys: KeyStore | None = None) -> "Authenticator":
        secret_file = settings.api.token_secret_file or settings.home / "api-token.key"
        if not secret_file.is_absolute():
            secret_file = settings.home / secret_file
        signer = TokenSigner(load_or_create_secret(secret_file), settings.api.token_ttl_s)
        return cls(signer, keys_from_settings(settings), SessionStore(settings.home / SESSIONS_FILE),
                   settings.api.session_max_s, settings.api.page_idle_s, api_only_keys)

    # --- issuing ------------------------------------------------------------------------------------

    def issue(self, principal: Principal, *, key_fp: str | None = None, ttl_s: int | None = None) -> IssuedToken:
        """A new session for ``principal`` and its first token (``ttl_s``: the token's lifetime,
        kept by every renewal; default ``api.token_ttl_s``)."""
        record = self.sessions.create(principal=principal.id, role=principal.role, name=principal.name,
                                      via=principal.via, key_fp=key_fp, max_age_s=self.session_max_s)
        return self.signer.issue(principal, ttl_s, sid=record.id, session_expires_at=record.expires, key_fp=key_fp)

    def sign_in_with_key(self, key: str) -> tuple[Principal, IssuedToken] | None:
        """A page session made from an API key (its cookie lives ``api.page_idle_s``), or None for a
        wrong key."""
        entry = self.keys.match(key)
        if entry is None:
            return None
        return entry.principal, self.issue(entry.principal, key_fp=self.signer.key_fingerprint(entry.digest),
                                           ttl_s=self.page_idle_s)

    # --- checking -----------------------------------------------------------------------------------

    def _key_principal(self, fingerprint: str) -> Principal | None:
        """The configured key with this fingerprint, compared with every key (no early exit)."""
        presented, found = fingerprint.encode("ascii", "replace"), None
        for fp, principal in self._key_fps:
            if hmac.compare_digest(fp, presented):
                found = principal
        return found

    def _session(self, claims: dict[str, Any]) -> tuple[Principal, SessionRecord]:
        """The live session of a signed, unexpired token and who it is now, or AuthError. Every
        reason a session is over gets the same answer, so nothing tells whether an id exists."""
        sid = claims.get("sid")
        record = self.sessions.get(sid) if isinstance(sid, str) else None  # no sid: issued before sessions
        if record is None or record.revoked_at is not None or record.principal != claims["sub"]:
            raise AuthError(SESSION_ENDED)
        if self.signer.clock() >= record.expires:
            raise AuthError(SESSION_LIMIT)
        revoked = self.sessions.principal_revoked_at(record.principal)
        if revoked is not None and record.created <= revoked:
            raise AuthError(SESSION_ENDED)
        principal: Principal = claims["principal"]
        if record.key_fp is not None or "kfp" in claims:
            # made from an API key: that key must still be configured; its role is the current one
            current = self._key_principal(str(claims.get("kfp") or ""))
            if (current is None or current.id != record.principal
                    or not hmac.compare_digest(str(record.key_fp or "").encode(), str(claims.get("kfp")).encode())):
                raise AuthError(SESSION_ENDED)
            principal = current
        return principal, record

    def verify_token(self, token: str) -> Principal:
        return self._session(self.signer.claims(token))[0]

    def authenticate(self, credential: str) -> Principal:
        if credential.startswith(TOKEN_PREFIX + "."):
            return self.verify_token(credential)
        principal, api_only = self.keys.lookup(credential), self.api_only_keys.lookup(credential)
        principal = principal or api_only
        if principal is None:
            raise AuthError("Invalid API key or token.")
        return principal

    # --- renewing and ending ------------------------------------------------------------------------

    def refresh(self, token: str) -> tuple[Principal, IssuedToken]:
        """A new token for the still-valid session of ``token`` (sliding renewal, never past the
        session's absolute end), or AuthError."""
        claims = self.signer.claims(token)
        principal, record = self._session(claims)
        self.sessions.renew(record.id)
        # the same lifetime as the token renewed (a page cookie stays a page cookie), never longer than
        # the longest this server issues
        ttl = min(max(60, int(claims["exp"]) - int(claims["iat"])), max(self.signer.ttl_s, self.page_idle_s))
        return principal, self.signer.issue(principal, ttl, sid=record.id, session_expires_at=record.expires,
                                            key_fp=record.key_fp)

    def renew_if_due(self, token: str) -> IssuedToken | None:
        """A renewed token when ``token`` is valid and past half its life (and can still be extended)."""
        try:
            claims = self.signer.claims(token)
        except AuthError:
            return None
        if self.signer.clock() - claims["iat"] < (claims["exp"] - claims["iat"]) / 2:
            return None
        if claims["exp"] >= int(claims.get("sxp", claims["exp"])):
            return None  # already at the session's end
        try:
            return self.refresh(token)[1]
        except AuthError:
            return None

    def sign_out(self, token: str) -> None:
        """End the session of one of our tokens (expired or not). Says nothing either way."""
        try:
            claims = self.signer.claims(token, check_expiry=False)
        except AuthError:
            return
        sid = claims.get("sid")
        if isinstance(sid, str) and self.sessions.revoke(sid, reason="signed out", by=str(claims["sub"])):
            log.info("%s signed out (session %s…)", claims["sub"], sid[:6])


def get_authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


_bearer = HTTPBearer(auto_error=False, description="Our token (from /api/v1/auth/wechat/login) or an API key.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A static API key.")


@dataclass(frozen=True)
class AuthResult:
    principal: Principal | None
    error: AuthError | None = None


def request_credential(request: Request) -> str | None:
    """The bearer token or API key of a request's headers (never a cookie)."""
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
    credential = request_credential(request)
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
