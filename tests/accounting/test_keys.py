"""Keys in the accounting database: shown once, stored hashed, scoped, revoked everywhere."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.accounting.keys import DatabaseKeys, KeyAdmin, KeyPrincipal, Keyring, check_scope
from gateway.accounting.store import Database
from gateway.auth import Principal, StaticKeyStore, hash_key
from gateway.errors import Forbidden, InvalidRequest, NotFound


def test_create_stores_only_the_digest(db: Database) -> None:
    admin = KeyAdmin(db)
    secret, info = admin.create("acme", budget_usd=Decimal("50"), rpm=600, models=["chat"])
    rows = db.query("SELECT * FROM api_keys")
    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0])
    assert bytes(db.query("SELECT digest FROM api_keys")[0][0]) == hash_key(secret)
    assert info.tenant == "acme" and info.budget_usd == Decimal(50) and info.models == ["chat"]
    assert "secret" not in info.as_json() and secret not in str(info.as_json())
    assert admin.list()[0].id == info.id


def test_database_keys_authenticate_and_revoke(db: Database) -> None:
    admin = KeyAdmin(db)
    secret, info = admin.create("acme", tpm=1000, allow_targets=["bedrock:*"])
    other, _ = admin.create("globex")
    keys = DatabaseKeys(db)
    assert keys.reload()
    found = keys.authenticate(secret)
    assert isinstance(found, KeyPrincipal)
    assert (found.tenant, found.key_id, found.limits.tpm) == ("acme", info.id, 1000)
    assert found.allow_targets == ("bedrock:*",)
    assert keys.authenticate(secret + "x") is None
    assert keys.authenticate(other).tenant == "globex"  # type: ignore[union-attr]
    assert not keys.reload()  # nothing changed

    admin.revoke(info.id)
    assert keys.reload()
    assert keys.authenticate(secret) is None
    assert keys.authenticate(other) is not None
    assert admin.get(info.id).revoked_at is not None


def test_tenant_limits_reach_every_key_of_the_tenant(db: Database) -> None:
    admin = KeyAdmin(db)
    secret, _ = admin.create("acme")
    admin.set_tenant("acme", rpm=5, budget_usd=Decimal("1.5"), budget_period="monthly")
    keys = DatabaseKeys(db)
    keys.reload()
    found = keys.authenticate(secret)
    assert isinstance(found, KeyPrincipal)
    assert found.tenant_limits.rpm == 5
    assert found.tenant_limits.budget_pusd == 1_500_000_000_000
    assert found.tenant_limits.budget_period == "monthly"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"rpm": 0}, "rpm"),
        ({"tpm": -1}, "tpm"),
        ({"tpm": 10**10}, "tpm"),
        ({"budget_usd": Decimal(10**7)}, "budget_usd"),
        ({"budget_usd": Decimal("-1")}, "budget_usd"),
        ({"budget_period": "weekly"}, "budget_period"),
    ],
)
def test_bad_limits_name_the_field(db: Database, kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        KeyAdmin(db).create("acme", **kwargs)  # type: ignore[arg-type]
    assert err.value.param == param


def test_unknown_key_id_is_404(db: Database) -> None:
    with pytest.raises(NotFound):
        KeyAdmin(db).revoke("key_nope")


def test_keyring_tries_the_dev_key_first(db: Database) -> None:
    secret, _ = KeyAdmin(db).create("acme")
    keys = DatabaseKeys(db)
    keys.reload()
    ring = Keyring(StaticKeyStore({"sk-dev": Principal("dev", "dev", admin=True)}), keys)
    assert ring.authenticate("sk-dev") == Principal("dev", "dev", admin=True)
    assert ring.authenticate(secret).tenant == "acme"  # type: ignore[union-attr]
    assert ring.authenticate("nope") is None


def test_scope_limits_aliases_and_raw_targets() -> None:
    chat_only = KeyPrincipal("acme", "k1", models=frozenset({"chat"}))
    check_scope(chat_only, "chat", is_alias=True)
    for model, is_alias in [("default", True), ("bedrock:anthropic.x", False), ("local:b", False)]:
        with pytest.raises(Forbidden) as err:
            check_scope(chat_only, model, is_alias=is_alias)
        assert "default" not in err.value.message or model == "default"
    targets = KeyPrincipal("acme", "k2", allow_targets=("bedrock:anthropic.*",))
    check_scope(targets, "bedrock:anthropic.claude-3-haiku-20240307-v1:0", is_alias=False)
    check_scope(targets, "anything", is_alias=True)  # no alias list: every alias
    with pytest.raises(Forbidden):
        check_scope(targets, "bedrock:meta.llama3-8b-instruct-v1:0", is_alias=False)
    admin = KeyPrincipal("acme", "k3", admin=True, models=frozenset())
    check_scope(admin, "bedrock:meta.llama3-8b-instruct-v1:0", is_alias=False)
    check_scope(Principal("dev", "dev", admin=True), "local:x", is_alias=False)
