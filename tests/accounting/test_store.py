"""Migrations: versioned SQL files, applied once, on both databases."""

from __future__ import annotations

from pathlib import Path

from gateway.accounting.store import Database, StoreUnavailable, migrations


def test_migrations_apply_once(db: Database) -> None:
    assert db.migrate() == []  # the fixture applied them already
    names = [r[0] for r in db.query("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [name for name, _ in migrations(db.dialect)]
    assert db.query("SELECT revision FROM key_revision") == [(0,)]


def test_both_dialects_have_the_same_migrations() -> None:
    assert [n for n, _ in migrations("sqlite")] == [n for n, _ in migrations("postgres")]


def test_unreachable_postgres_is_store_unavailable(tmp_path: Path) -> None:
    from tests.accounting.conftest import free_port

    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/test", tmp_path)
    try:
        db.query("SELECT 1")
    except StoreUnavailable as exc:
        assert "postgresql://…@127.0.0.1" in str(exc)
    else:
        raise AssertionError("expected StoreUnavailable")
    finally:
        db.close()
