"""Keys: hashed at rest and in memory, the dev key kept 0600 and printed only once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.auth import (
    OpenAccess,
    Principal,
    StaticKeyStore,
    authenticate,
    build_key_store,
    hash_key,
)
from gateway.errors import Unauthorized


def test_store_keeps_only_hashes() -> None:
    store = StaticKeyStore({"sk-strata-abc": Principal("t1", "k1")})
    assert all(digest == hash_key("sk-strata-abc") for digest, _ in store._hashes)
    assert "sk-strata-abc" not in repr(vars(store))
    assert store.authenticate("sk-strata-abc") == Principal("t1", "k1")
    assert store.authenticate("sk-strata-abd") is None
    assert store.authenticate("") is None


def test_each_key_maps_to_its_own_tenant() -> None:
    store = StaticKeyStore({"k-a": Principal("a", "1"), "k-b": Principal("b", "2")})
    assert store.authenticate("k-a") == Principal("a", "1")
    assert store.authenticate("k-b") == Principal("b", "2")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Token abc", "abc"])
def test_malformed_headers_are_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        authenticate(StaticKeyStore({"k": Principal("t", "k")}), header)


def test_generated_dev_key_is_private_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_key_store(tmp_path, None, False)
    printed = capsys.readouterr().err
    key = (tmp_path / "dev-key").read_text().strip()
    assert key.startswith("sk-strata-") and key in printed
    assert stat.S_IMODE((tmp_path / "dev-key").stat().st_mode) == 0o600
    assert store.authenticate(key) is not None

    again = build_key_store(tmp_path, None, False)
    assert key not in capsys.readouterr().err
    assert again.authenticate(key) is not None


def test_configured_dev_key_writes_nothing(tmp_path: Path) -> None:
    store = build_key_store(tmp_path, "sk-strata-mine", False)
    assert store.authenticate("sk-strata-mine") is not None
    assert not (tmp_path / "dev-key").exists()


def test_auth_disabled_is_explicit_and_loud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = build_key_store(tmp_path, None, True)
    assert isinstance(store, OpenAccess)
    assert "DISABLED" in caplog.text
