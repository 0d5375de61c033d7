"""API keys and tenants in the accounting database: create, list, revoke, authenticate.

A key is shown once, when created; the database keeps only its SHA-256 digest (a key carries
256 random bits, so a fast hash leaves nothing to brute-force). Each replica keeps an in-memory
map digest → principal, reloaded whenever the shared revision counter moves (polled every
``keys_refresh_s``), so authentication never waits on the database and a revocation reaches
every replica within one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from gateway.accounting.money import pusd_to_usd, usd_text, usd_to_pusd
from gateway.accounting.store import Database, StoreUnavailable
from gateway.auth import KEY_PREFIX, KeyStore, Principal, hash_key
from gateway.errors import Forbidden, InvalidRequest, NotFound

log = logging.getLogger("strata.accounting.keys")

Period = Literal["total", "monthly"]
PERIODS: tuple[Period, ...] = ("total", "monthly")
MAX_RATE = 2_000_000_000  # fits the INTEGER columns
MAX_BUDGET_USD = Decimal(9_000_000)


@dataclass(frozen=True)
class Limits:
    """What one key or tenant may spend and how fast; ``None`` means no limit."""

    rpm: int | None = None
    tpm: int | None = None
    budget_pusd: int | None = None
    budget_period: Period = "total"


@dataclass(frozen=True)
class KeyPrincipal(Principal):
    """A database key: who it is, what it may reach, its limits and its tenant's."""

    models: frozenset[str] | None = None  # aliases it may use; None: every alias
    allow_targets: tuple[str, ...] = ()  # glob patterns of raw targets (bedrock:…, local:…)
    limits: Limits = field(default_factory=Limits)
    tenant_limits: Limits = field(default_factory=Limits)

    def may_use(self, model: str, is_alias: bool) -> bool:
        if self.admin:
            return True
        if is_alias:
            return self.models is None or model in self.models
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.allow_targets)


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but the secret, which is never stored."""

    id: str
    tenant: str
    name: str | None
    admin: bool
    models: list[str] | None
    allow_targets: list[str]
    rpm: int | None
    tpm: int | None
    budget_usd: Decimal | None
    budget_period: Period
    created_at: float
    revoked_at: float | None

    def as_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["budget_usd"] = usd_text(self.budget_usd)
        return out


_KEY_COLUMNS = (
    "id, tenant, name, admin, models, allow_targets, rpm, tpm, budget_pusd, budget_period, "
    "created_at, revoked_at"
)


def _info(row: tuple[Any, ...]) -> KeyInfo:
    return KeyInfo(
        id=row[0],
        tenant=row[1],
        name=row[2],
        admin=bool(row[3]),
        models=json.loads(row[4]) if row[4] is not None else None,
        allow_targets=json.loads(row[5]) if row[5] is not None else [],
        rpm=row[6],
        tpm=row[7],
        budget_usd=None if row[8] is None else pusd_to_usd(int(row[8])),
        budget_period=row[9],
        created_at=row[10],
        revoked_at=row[11],
    )


class KeyAdmin:
    """Create, list and revoke keys; set tenant limits. Used by the CLI and the admin routes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        tenant: str,
        *,
        name: str | None = None,
        admin: bool = False,
        models: list[str] | None = None,
        allow_targets: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: Decimal | None = None,
        budget_period: Period = "total",
    ) -> tuple[str, KeyInfo]:
        """A new key: the secret (shown once, never retrievable later) and its listing."""
        _check_limits(rpm, tpm, budget_usd, budget_period)
        if not tenant.strip():
            raise InvalidRequest("tenant: must not be empty", param="tenant")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        now = time.time()
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}, digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    tenant,
                    name,
                    admin,
                    json.dumps(models) if models is not None else None,
                    json.dumps(allow_targets or []),
                    rpm,
                    tpm,
                    None if budget_usd is None else usd_to_pusd(budget_usd),
                    budget_period,
                    now,
                    None,
                    hash_key(secret),
                ),
            )
            _bump(cur)
        return secret, self.get(key_id)

    def get(self, key_id: str) -> KeyInfo:
        rows = self.db.query(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        if not rows:
            raise NotFound(f"no key with id {key_id!r}", param="id")
        return _info(rows[0])

    def list(self, tenant: str | None = None) -> list[KeyInfo]:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys"
        params: tuple[Any, ...] = ()
        if tenant is not None:
            sql, params = sql + " WHERE tenant = ?", (tenant,)
        return [_info(r) for r in self.db.query(sql + " ORDER BY created_at", params)]

    def revoke(self, key_id: str) -> KeyInfo:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            _bump(cur)
        return self.get(key_id)

    def set_tenant(
        self,
        tenant: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: Decimal | None = None,
        budget_period: Period = "total",
    ) -> Limits:
        """Set (replace) a tenant's limits, shared by all of its keys."""
        _check_limits(rpm, tpm, budget_usd, budget_period)
        budget = None if budget_usd is None else usd_to_pusd(budget_usd)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM tenants WHERE name = ?", (tenant,))
            cur.execute(
                "INSERT INTO tenants (name, budget_pusd, budget_period, rpm, tpm, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (tenant, budget, budget_period, rpm, tpm, time.time()),
            )
            _bump(cur)
        return Limits(rpm, tpm, budget, budget_period)

    def tenants(self) -> dict[str, Limits]:
        rows = self.db.query("SELECT name, rpm, tpm, budget_pusd, budget_period FROM tenants")
        return {r[0]: Limits(r[1], r[2], r[3], r[4]) for r in rows}


def _check_limits(
    rpm: int | None, tpm: int | None, budget_usd: Decimal | None, period: str
) -> None:
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and not 1 <= value <= MAX_RATE:
            raise InvalidRequest(f"{name}: must be from 1 to {MAX_RATE}", param=name)
    if budget_usd is not None and not 0 <= budget_usd <= MAX_BUDGET_USD:
        # Money is kept in 64-bit pico-USD counters (exact sums), which caps a budget.
        raise InvalidRequest(f"budget_usd: must be from 0 to {MAX_BUDGET_USD}", param="budget_usd")
    if period not in PERIODS:
        raise InvalidRequest(
            f"budget_period: must be one of {', '.join(PERIODS)}", param="budget_period"
        )


def _bump(cur: Any) -> None:
    cur.execute("UPDATE key_revision SET revision = revision + 1 WHERE id = 1")


def _revision(db: Database) -> int:
    return int(db.query("SELECT revision FROM key_revision WHERE id = 1")[0][0])


def _load(db: Database) -> tuple[int, dict[bytes, KeyPrincipal]]:
    with db.transaction() as cur:
        cur.execute("SELECT revision FROM key_revision WHERE id = 1")
        revision = int(cur.fetchone()[0])
        cur.execute("SELECT name, rpm, tpm, budget_pusd, budget_period FROM tenants")
        tenants = {r[0]: Limits(r[1], r[2], r[3], r[4]) for r in cur.fetchall()}
        cur.execute(f"SELECT {_KEY_COLUMNS}, digest FROM api_keys WHERE revoked_at IS NULL")
        rows = cur.fetchall()
    keys: dict[bytes, KeyPrincipal] = {}
    for row in rows:
        info = _info(row)
        keys[bytes(row[12])] = KeyPrincipal(
            tenant=info.tenant,
            key_id=info.id,
            admin=info.admin,
            models=frozenset(info.models) if info.models is not None else None,
            allow_targets=tuple(info.allow_targets),
            limits=Limits(info.rpm, info.tpm, row[8], info.budget_period),
            tenant_limits=tenants.get(info.tenant, Limits()),
        )
    return revision, keys


class DatabaseKeys:
    """The accounting database's keys as a ``KeyStore``, cached in memory and kept fresh."""

    def __init__(self, db: Database, refresh_s: float = 1.0) -> None:
        self._db = db
        self._refresh_s = refresh_s
        self._revision = -1
        self._keys: dict[bytes, tuple[bytes, KeyPrincipal]] = {}
        self._task: asyncio.Task[None] | None = None

    def reload(self) -> bool:
        """Re-read the keys if the revision moved; True when it did."""
        if _revision(self._db) == self._revision:
            return False
        revision, keys = _load(self._db)
        self._keys = {digest: (digest, p) for digest, p in keys.items()}
        self._revision = revision
        return True

    def authenticate(self, token: str) -> Principal | None:
        digest = hash_key(token)
        found = self._keys.get(digest)
        # The lookup is keyed by a digest, which tells an attacker nothing about any key; the
        # final check is still a constant-time compare, so no path compares secrets with ==.
        if found is not None and hmac.compare_digest(found[0], digest):
            return found[1]
        return None

    async def start(self) -> None:
        await asyncio.to_thread(self.reload)
        self._task = asyncio.create_task(self._poll(), name="strata-keys-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                if await asyncio.to_thread(self.reload):
                    log.info("reloaded %d keys (revision %d)", len(self._keys), self._revision)
            except StoreUnavailable as exc:
                # Keep serving the keys we have; a revocation waits for the database.
                log.warning("key refresh failed, keeping the cached keys: %s", exc)


class Keyring:
    """Keys known at start (the dev key) first, then the database's."""

    def __init__(self, *stores: KeyStore) -> None:
        self._stores = stores

    def authenticate(self, token: str) -> Principal | None:
        for store in self._stores:
            found = store.authenticate(token)
            if found is not None:
                return found
        return None


def check_scope(principal: Principal, model: str, is_alias: bool) -> None:
    """Refuse a model the key may not reach, before anything is spent or routed.

    Admin keys (and the dev key) reach everything. Other database keys reach the aliases they
    list (all aliases when they list none), and raw targets only through ``allow_targets``.
    The refusal names no other alias, so a tenant learns nothing about the gateway's others.
    """
    if principal.may_use(model, is_alias):
        return
    if is_alias:
        raise Forbidden(f"this API key may not use model {model!r}", param="model")
    raise Forbidden(
        f"this API key may not name a raw target ({model!r}); use an alias it is allowed",
        param="model",
    )
