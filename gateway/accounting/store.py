"""The accounting database: SQLite in ``$STRATA_HOME`` by default, PostgreSQL when
``STRATA_DATABASE_URL`` is set, behind one small synchronous interface.

Synchronous on purpose: every caller is off the event loop (the ledger's writer thread, the key
poller through ``asyncio.to_thread``, the CLI), and one code path serves both drivers.

Migrations are versioned SQL files (``migrations/<dialect>/NNNN_name.sql``) applied in order at
open, each in its own transaction, recorded in ``schema_migrations``. PostgreSQL replicas that
start together serialise on an advisory lock; SQLite on ``BEGIN IMMEDIATE``. Plain SQL files
rather than alembic: two drivers and no ORM here, and the schema stays readable as SQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

log = logging.getLogger("strata.accounting.store")

Dialect = Literal["sqlite", "postgres"]
Row = tuple[Any, ...]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def insert_new(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: str
    ) -> None: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...


class StoreUnavailable(Exception):
    """The database could not be reached or refused the statement for a transient reason."""


class Database:
    """Connections for one database. SQL is written with ``?`` placeholders for both drivers."""

    def __init__(self, url: str | None, home: Path) -> None:
        self.dialect: Dialect = "postgres" if url else "sqlite"
        self._url = url
        self._path = home / "accounting.sqlite"
        self._pool: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's SQLite connection
        self._sqlite_conns: set[sqlite3.Connection] = set()
        if url is None:
            home.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:{self._path}"
        host = (self._url or "").split("@")[-1].split("?")[0]
        return f"postgresql://…@{host}"  # never the credentials

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql

    def _postgres_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                # check= makes the pool test a connection before lending it, so a pool that lived
                # through a database outage hands out working connections afterwards.
                self._pool = ConnectionPool(
                    self._url or "",
                    min_size=1,
                    max_size=8,
                    open=True,
                    timeout=2.0,
                    check=ConnectionPool.check_connection,
                    kwargs={"connect_timeout": 2},
                )
            return self._pool

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor inside one transaction: committed on exit, rolled back on an error."""
        try:
            if self.dialect == "postgres":
                with self._postgres_pool().connection() as conn, conn.cursor() as cur:
                    yield _Translating(cur, self._sql, "postgres")
                return
            conn = self._sqlite()
            try:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.cursor()
                try:
                    yield _Translating(cur, self._sql, "sqlite")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except BaseException:
                self._drop_sqlite()  # a fresh connection next time, whatever state this one is in
                raise
        except _transient() as exc:
            raise StoreUnavailable(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc

    def _sqlite(self) -> sqlite3.Connection:
        """This thread's connection, opened once: opening one (and the schema parse on its first
        statement) cost the ledger writer ~5 ms per batch, most of the cold path's CPU."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn not in self._sqlite_conns:  # none yet, or close() closed it
            # Used only by the thread that opened it; close() may run on another one.
            conn = sqlite3.connect(
                self._path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            try:
                _wal(conn, timeout_s=10.0)
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
            with self._lock:
                self._sqlite_conns.add(conn)
        return conn

    def _drop_sqlite(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._sqlite_conns.discard(conn)
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.transaction() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction() as cur:
            cur.execute(sql, params)

    def migrate(self) -> list[str]:
        """Apply every migration not applied yet; returns the names applied now."""
        applied: list[str] = []
        with self.transaction() as cur:
            if self.dialect == "postgres":
                # One lock per schema (search_path), so tests in their own schemas don't wait.
                cur.execute("SELECT current_schema()")
                schema = str(cur.fetchone()[0])
                lock = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big") >> 1
                cur.execute("SELECT pg_advisory_xact_lock(?)", (lock,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            cur.execute("SELECT name FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
            for name, sql in migrations(self.dialect):
                if name in done:
                    continue
                for statement in _statements(sql):
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time()))
                applied.append(name)
        if applied:
            log.info("%s: applied migrations %s", self.describe(), ", ".join(applied))
        return applied

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            conns, self._sqlite_conns = self._sqlite_conns, set()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def migrations(dialect: Dialect) -> list[tuple[str, str]]:
    folder = resources.files("gateway.accounting") / "migrations" / dialect
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _transient() -> tuple[type[BaseException], ...]:
    """Errors that mean "the database is not reachable now": retried, never fatal."""
    import psycopg
    import psycopg_pool

    return (
        sqlite3.OperationalError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        psycopg_pool.PoolTimeout,
    )


class _Translating:
    """A DB-API cursor whose statements use ``?`` whatever the driver's placeholder."""

    def __init__(self, cur: Any, translate: Any, dialect: Dialect) -> None:
        self._cur = cur
        self._translate = translate
        self._dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(self._translate(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cur.executemany(self._translate(sql), rows)

    def insert_new(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: str
    ) -> None:
        """Insert ``rows``, skipping those whose ``key`` (a unique column) is already there.

        PostgreSQL takes them by COPY into a temporary table, then one ``INSERT … SELECT …
        ON CONFLICT DO NOTHING``: psycopg's COPY formats rows in C, where ``executemany``
        builds and sends each row's statement in Python (~3x the client's CPU for a ledger
        batch). The table (``LIKE`` the target, so no column list to keep in step) lives as
        long as the connection and is emptied at every commit."""
        names = ", ".join(columns)
        if self._dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            self._cur.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING",
                rows,
            )
            return
        staging = f"strata_new_{table}"
        self._cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS"
        )
        with self._cur.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # The first row of a repeated key wins, as with one INSERT per row (ctid: COPY order).
        self._cur.execute(
            f"INSERT INTO {table} ({names}) SELECT DISTINCT ON ({key}) {names} FROM {staging} "
            f"ORDER BY {key}, ctid ON CONFLICT ({key}) DO NOTHING"
        )

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


def _wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """WAL mode, waiting for a turn: turning a new file to WAL needs an exclusive lock, and when
    other processes open it at the same moment (``strata serve --workers N`` on a fresh home)
    SQLite answers "database is locked" at once instead of waiting out the busy timeout. One
    worker then failed to start, and the supervisor stopped them all."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
