"""API keys: stored hashed, compared in constant time, resolved to the caller's tenant."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.errors import ConfigError, Unauthorized

log = logging.getLogger("strata.auth")

KEY_PREFIX = "sk-strata-"


@dataclass(frozen=True)
class Principal:
    tenant: str
    key_id: str
    admin: bool = False

    def may_use(self, model: str, is_alias: bool) -> bool:
        """Whether this caller may name ``model`` (an alias, or a raw target when not
        ``is_alias``). Keys known at start (the dev key) reach everything."""
        return True


class KeyStore(Protocol):
    def authenticate(self, token: str) -> Principal | None: ...


def hash_key(key: str) -> bytes:
    # Keys are long random strings, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).digest()


class StaticKeyStore:
    """Keys known at start-up (the embedded default's dev key); only their hashes are kept."""

    def __init__(self, keys: dict[str, Principal]) -> None:
        self._hashes = [(hash_key(k), p) for k, p in keys.items()]

    def authenticate(self, token: str) -> Principal | None:
        digest = hash_key(token)
        found: Principal | None = None
        # Compare against every key so timing does not reveal which, or how many, matched.
        for stored, principal in self._hashes:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


class OpenAccess:
    """Auth switched off by explicit setting: every caller is the one default tenant, with or
    without an Authorization header."""

    principal = Principal(tenant="default", key_id="auth-disabled", admin=True)

    def authenticate(self, token: str) -> Principal | None:
        return self.principal


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    return token.strip()


def authenticate(store: KeyStore, header: str | None) -> Principal:
    if isinstance(store, OpenAccess):
        return store.principal
    principal = store.authenticate(bearer_token(header))
    if principal is None:
        raise Unauthorized("invalid API key")
    return principal


def dev_key(home: Path, configured: str | None) -> str:
    """The embedded default's key: the configured one, else one kept in ``home/dev-key``.

    A generated key is printed once, when it is created; later starts only say where it is.
    Creation is atomic (a private temp file hard-linked into place), so gateways started at the
    same moment agree on one key and none reads a half-written file.
    """
    if configured is not None:
        if not configured.strip():
            raise ConfigError("STRATA_DEV_KEY is set but empty: unset it or give a key")
        return configured.strip()
    home.mkdir(parents=True, exist_ok=True)
    path = home.resolve() / "dev-key"
    try:
        key = _read_key(path)
        log.info("using the dev key stored in %s", path)
        return key
    except FileNotFoundError:
        pass
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    temp = path.with_name(f".dev-key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(temp, path)  # fails if another start linked its key first
    except FileExistsError:
        log.info("using the dev key stored in %s", path)
        return _read_key(path)
    finally:
        temp.unlink(missing_ok=True)
    # Printed straight to the terminal, never through logging, so it cannot reach log sinks.
    print(
        f"strata: generated a dev API key (stored in {path}, mode 0600):\n  {key}",
        file=sys.stderr,
        flush=True,
    )
    return key


def _read_key(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(
            f"{path} is empty: delete it to have a new key generated, or set STRATA_DEV_KEY"
        )
    if mode & 0o077:
        log.warning(
            "%s can be read by other users (mode %03o); run: chmod 600 %s", path, mode, path
        )
    return key


def build_key_store(home: Path, configured_key: str | None, auth_disabled: bool) -> KeyStore:
    if auth_disabled:
        log.warning(
            "AUTHENTICATION IS DISABLED (STRATA_AUTH_DISABLED): anyone who can reach "
            "this port can use every model"
        )
        return OpenAccess()
    key = dev_key(home, configured_key)
    return StaticKeyStore({key: Principal(tenant="dev", key_id="dev", admin=True)})
