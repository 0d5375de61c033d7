"""The ledger: batched off the request path, idempotent by request id, nothing lost across a
crash or a database outage."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from gateway.accounting.ledger import COLUMNS, Ledger, LedgerRecord, as_row
from gateway.accounting.store import Database
from tests.fakes.tcp_proxy import TcpProxy


def record(i: int, **overrides: object) -> LedgerRecord:
    base = LedgerRecord(
        request_id=f"req-{i}",
        ts=time.time(),
        tenant="acme",
        key_id="key_1",
        surface="openai",
        alias="chat",
        experiment=None,
        variant=None,
        target="bedrock:m",
        region="us-east-1",
        status=200,
        error_class=None,
        attempts=1,
        cache_hit=False,
        stream=False,
        input_tokens=i,
        output_tokens=2 * i,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cost_pusd=1000 * i,
        pricing="token",
        cache_savings_pusd=0,
        latency_ms=1.5,
        upstream_ms=1.0,
        ttft_ms=None,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def ids(db: Database) -> list[str]:
    return sorted(r[0] for r in db.query("SELECT request_id FROM ledger"))


def test_records_are_written_in_batches_and_idempotent(db: Database, tmp_path: Path) -> None:
    ledger = Ledger(db, tmp_path, flush_interval_s=0.05, batch_size=7)
    ledger.start()
    for i in range(50):
        ledger.record(record(i))
    ledger.record(record(3, output_tokens=999))  # a duplicate request id is ignored
    assert ledger.flush()
    ledger.close()
    assert ids(db) == sorted(f"req-{i}" for i in range(50))
    assert db.query("SELECT output_tokens FROM ledger WHERE request_id = 'req-3'") == [(6,)]
    assert db.query("SELECT SUM(cost_pusd) FROM ledger")[0][0] == 1000 * sum(range(50))
    assert not (tmp_path / "ledger-wal").exists() or not any((tmp_path / "ledger-wal").iterdir())


_CRASH = """
import sys, time
from pathlib import Path
from gateway.accounting.ledger import Ledger
from gateway.accounting.store import Database
from tests.accounting.test_ledger import record
home = Path(sys.argv[1])
ledger = Ledger(Database(None, home), home, flush_interval_s=3600, batch_size=10**6)
ledger.start()
for i in range(200):
    ledger.record(record(i))
print("recorded", flush=True)
time.sleep(60)
"""


def killed_after(script: str, home: Path) -> list[Path]:
    """Run ``script`` until it prints "recorded", then SIGKILL it; returns the write-ahead
    segments it had at that moment."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "recorded"
    segments = list((home / "ledger-wal").rglob("*.jsonl"))
    proc.kill()
    proc.wait()
    return segments


def test_segments_of_a_killed_process_are_replayed(tmp_path: Path) -> None:
    db = Database(None, tmp_path)
    db.migrate()
    killed_after(_CRASH, tmp_path)  # SIGKILL: nothing was written to the database, nothing drained
    assert ids(db) == []
    ledger = Ledger(db, tmp_path, flush_interval_s=0.05)
    ledger.start()
    assert ledger.flush()
    ledger.close()
    assert ids(db) == sorted(f"req-{i}" for i in range(200))
    assert ledger.stats.replayed == 200


def test_live_process_segments_are_left_alone(tmp_path: Path) -> None:
    db = Database(None, tmp_path)
    db.migrate()
    first = Ledger(db, tmp_path, flush_interval_s=3600, batch_size=10**6)
    first.start()
    first.record(record(1))
    second = Ledger(db, tmp_path, flush_interval_s=0.05)
    second.start()
    assert second.flush()
    assert second.stats.replayed == 0
    second.close()
    first.close()  # drains its own record
    assert ids(db) == ["req-1"]


def test_postgres_outage_is_buffered_then_written(pg_url: str, tmp_path: Path) -> None:
    """The database is made unreachable for this test alone: a loopback proxy in front of the
    shared PostgreSQL is cut for 3 s mid-run (stopping the real server would hit others).
    test_nothing_lost.py does the 5 s outage of acceptance 4 through a whole gateway."""
    setup = Database(pg_url, tmp_path / "setup")
    setup.migrate()
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        db = Database(url, tmp_path)
        # A small memory cap: most of what the outage buffers is kept on disk only.
        ledger = Ledger(db, tmp_path, flush_interval_s=0.05, batch_size=20, memory_cap=50)
        ledger.start()
        for i in range(100):
            ledger.record(record(i))
        assert ledger.flush()
        proxy.cut()
        outage_end = time.monotonic() + 3
        i = 100
        while time.monotonic() < outage_end:
            ledger.record(record(i))
            i += 1
            time.sleep(0.01)
        assert ledger.stats.failures > 0
        assert ledger.backlog > 50 and ledger.spilled > 0
        segments = list((tmp_path / "ledger-wal").rglob("*.jsonl"))
        assert segments, "buffered records must be on disk while the database is away"
        proxy.restore()
        assert ledger.flush(timeout_s=30)
        ledger.close()
        db.close()
    assert ids(setup) == sorted(f"req-{n}" for n in range(i))
    setup.close()
    assert os.path.exists(tmp_path)


def test_ledgers_starting_together_on_one_home_keep_their_own_segments(
    db: Database, tmp_path: Path
) -> None:
    """Workers of one ``strata serve --workers N`` start their ledgers at the same moment on one
    STRATA_HOME, each scanning for dead processes' segments while the others create theirs: none
    may take another's fresh folder for a dead one's (a folder appears only with its lock held).
    Before, a scanner could lock a folder between its creator's open and flock, adopt it and
    remove it: the creator's start then failed with FileNotFoundError."""
    import threading

    for round_ in range(5):
        ledgers = [Ledger(db, tmp_path, flush_interval_s=0.05) for _ in range(8)]
        barrier = threading.Barrier(len(ledgers))
        errors: list[BaseException] = []

        def start(ledger: Ledger, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            barrier.wait()
            try:
                ledger.start()
            except BaseException as exc:  # asserted below
                errors.append(exc)

        threads = [
            threading.Thread(target=start, args=(ledger, barrier, errors)) for ledger in ledgers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for n, ledger in enumerate(ledgers):
            for i in range(10):
                ledger.record(record(round_ * 1000 + n * 10 + i))
        for ledger in ledgers:
            assert ledger.flush()
            ledger.close()
    assert len(ids(db)) == 5 * 8 * 10
    assert not any(p.name for p in (tmp_path / "ledger-wal").iterdir())


def test_a_batch_skips_request_ids_already_written_or_repeated(db: Database) -> None:
    """The batch insert (COPY through a temporary table on PostgreSQL): a request id already
    in the ledger, or twice in one batch, is written once and never fails the batch; the
    temporary table is empty again for the next transaction."""
    with db.transaction() as cur:
        cur.insert_new("ledger", COLUMNS, [as_row(record(1))], "request_id")
    batch = [record(1, output_tokens=999), record(2), record(2, output_tokens=999), record(3)]
    for _ in range(2):  # the second time on the same connection: every id already there
        with db.transaction() as cur:
            cur.insert_new("ledger", COLUMNS, [as_row(r) for r in batch], "request_id")
    assert ids(db) == ["req-1", "req-2", "req-3"]
    assert db.query("SELECT COUNT(*) FROM ledger WHERE output_tokens = 999") == [(0,)]


def test_an_idle_writer_sleeps_until_the_next_record(db: Database, tmp_path: Path) -> None:
    """An idle gateway's writer thread must not wake on a timer: before, it woke every
    ``flush_interval_s`` to find nothing (5 wake-ups a second by default), which the cold path
    (a request now and then) paid for."""
    ledger = Ledger(db, tmp_path, flush_interval_s=0.01)
    ledger.start()
    try:
        ledger.record(record(1))
        assert ledger.flush()
        deadline = time.monotonic() + 30
        while not ledger.asleep and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ledger.asleep
        rounds = ledger.rounds
        time.sleep(0.3)  # thirty flush intervals with nothing recorded
        assert ledger.rounds == rounds and ledger.asleep
        ledger.record(record(2))  # the next record wakes it, and is written
        assert ledger.flush()
        assert ledger.rounds > rounds
    finally:
        ledger.close()
    assert ids(db) == ["req-1", "req-2"]
