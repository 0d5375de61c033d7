"""Migrations: versioned SQL files, applied once, on both databases."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

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


def test_sqlite_keeps_one_connection_per_thread(tmp_path: Path) -> None:
    """Issue 17: every transaction opened (and schema-parsed) a new SQLite connection, ~5 ms
    of the ledger writer's CPU per batch. A TEMP table lives only as long as its connection,
    so it shows which transactions shared one."""
    import threading

    db = Database(None, tmp_path)
    db.migrate()
    db.execute("CREATE TEMP TABLE probe (x INTEGER)")
    db.execute("INSERT INTO probe VALUES (1)")
    assert db.query("SELECT x FROM probe") == [(1,)]  # the same connection, kept
    seen: list[object] = []

    def other_thread() -> None:
        try:
            db.query("SELECT x FROM probe")
        except Exception as exc:
            seen.append(exc)
        # Its own connection still reaches the shared tables.
        seen.append(db.query("SELECT COUNT(*) FROM schema_migrations")[0][0])

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert "no such table" in str(seen[0]) and int(str(seen[1])) >= 1
    db.close()
    # After close() a transaction opens a fresh connection: the TEMP table is gone.
    assert db.query("SELECT COUNT(*) FROM sqlite_temp_master WHERE name = 'probe'") == [(0,)]
    db.close()


def _open_and_migrate(home: str, barrier: Any, answers: Any) -> None:
    barrier.wait()  # every process opens the fresh file at the same moment
    try:
        db = Database(None, Path(home))
        db.migrate()
        db.close()
        answers.put("ok")
    except Exception as exc:
        answers.put(repr(exc))


def test_processes_opening_a_fresh_sqlite_home_at_once_all_succeed(tmp_path: Path) -> None:
    """``strata serve --workers N`` on a fresh home: turning the new file to WAL mode answered
    "database is locked" at once to all but one of the workers starting together (4 of 10
    rounds of 8 failed before), and the supervisor stopped on the worker that failed."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(10):
        home = tmp_path / f"home-{round_}"
        barrier, answers = ctx.Barrier(8), ctx.Queue()
        procs = [
            ctx.Process(target=_open_and_migrate, args=(str(home), barrier, answers))
            for _ in range(8)
        ]
        for proc in procs:
            proc.start()
        got = [answers.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert got == ["ok"] * 8, got
