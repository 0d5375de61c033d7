"""API keys: stored hashed, compared in constant time, resolved to the caller's tenant."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.errors import Unauthorized

log = logging.getLogger("strata.auth")

KEY_PREFIX = "sk-strata-"


@dataclass(frozen=True)
class Principal:
    tenant: str
    key_id: str
    admin: bool = False


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
    """Auth switched off by explicit setting: every caller is the one default tenant."""

    def authenticate(self, token: str) -> Principal | None:
        return Principal(tenant="default", key_id="auth-disabled", admin=True)


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    return token.strip()


def authenticate(store: KeyStore, header: str | None) -> Principal:
    principal = store.authenticate(bearer_token(header))
    if principal is None:
        raise Unauthorized("invalid API key")
    return principal


def dev_key(home: Path, configured: str | None) -> str:
    """The embedded default's key: the configured one, else one kept in ``home/dev-key``.

    A generated key is printed once, when it is created; later starts only say where it is.
    """
    if configured:
        return configured
    path = home / "dev-key"
    if path.exists():
        log.info("using the dev key stored in %s", path)
        return path.read_text(encoding="utf-8").strip()
    home.mkdir(parents=True, exist_ok=True)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    # Printed straight to the terminal, never through logging, so it cannot reach log sinks.
    print(
        f"strata: generated a dev API key (stored in {path}, mode 0600):\n  {key}",
        file=sys.stderr,
        flush=True,
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
