"""The usage ledger: one record per call, written off the request path, never lost.

``record()`` appends the record as one JSON line to this process's write-ahead segment in
``$STRATA_HOME/ledger-wal/<process>/`` (one ``write(2)``, a few microseconds: it survives a
``kill -9`` in the page cache) and queues it. A writer thread seals the segment every
``flush_interval_s`` (or ``batch_size`` records), inserts its records in one transaction,
idempotent by request id (``ON CONFLICT DO NOTHING``), and deletes the segment only after the
commit. While the database is unreachable sealed segments pile up and are retried with backoff,
oldest first. At start, segments of processes that died (their folder's lock is free) are
replayed; ``close()`` drains everything it can.

Segments are fsynced by the writer thread when sealed, so a power loss can cost at most the
records of the segment being written; a process crash costs nothing.

The writer sleeps on a condition while there is nothing to write: an idle gateway's writer
never wakes (``rounds`` counts its passes). The first record after a quiet spell wakes it; it
then waits ``flush_interval_s`` so that the records of that interval go in one batch, and keeps
that pace until an interval passes with no record.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import operator
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import orjson

from gateway.accounting.store import Database, StoreUnavailable

log = logging.getLogger("strata.accounting.ledger")


@dataclass(frozen=True)
class LedgerRecord:
    request_id: str
    ts: float
    tenant: str
    key_id: str
    surface: str
    alias: str | None
    experiment: str | None
    variant: str | None
    target: str | None
    region: str | None
    status: int
    error_class: str | None
    attempts: int
    cache_hit: bool
    stream: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_pusd: int | None
    pricing: str
    cache_savings_pusd: int | None
    latency_ms: float | None
    upstream_ms: float | None
    ttft_ms: float | None


COLUMNS = tuple(f.name for f in fields(LedgerRecord))
# A flat tuple of the fields, in column order (dataclasses.astuple deep-copies: ~10x slower).
as_row = operator.attrgetter(*COLUMNS)


@dataclass
class LedgerStats:
    recorded: int = 0  # records accepted by record()
    written: int = 0  # records committed (including duplicates the database ignored)
    replayed: int = 0  # records recovered from dead processes' segments
    failures: int = 0  # failed write attempts (database unreachable)

    def as_json(self) -> dict[str, int]:
        return dict(vars(self))


def _parse(path: Path) -> list[LedgerRecord]:
    out: list[LedgerRecord] = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(LedgerRecord(*orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError):
            # Only a torn last line (a crash inside write) can be malformed; its call never
            # answered, so there is nothing to keep.
            log.warning("%s: skipping a malformed ledger line", path)
    return out


class Ledger:
    def __init__(
        self,
        db: Database,
        home: Path,
        *,
        flush_interval_s: float = 0.2,
        batch_size: int = 500,
        memory_cap: int = 100_000,
    ) -> None:
        self._db = db
        self._root = home / "ledger-wal"
        self._dir = self._root / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._interval = flush_interval_s
        self._batch = batch_size
        self.stats = LedgerStats()
        self._lock = threading.Lock()  # guards the open segment and its pending records
        self._wake = threading.Event()  # a full batch, a flush or close: write now
        self._work = threading.Condition(self._lock)  # the first record after a quiet spell
        self._stop = threading.Event()
        self.rounds = 0  # the writer's passes (each one a wake-up of its thread)
        self.asleep = False  # the writer waits for a record, with no timer
        self._pending: list[LedgerRecord] = []
        # Sealed segments not yet committed: (file, its records or None once spilled, count).
        # Past ``memory_cap`` buffered records (a long outage), newer segments are kept on disk
        # only and re-read when their turn comes.
        self._backlog: deque[tuple[Path, list[LedgerRecord] | None, int]] = deque()
        self._memory_cap = memory_cap
        self._in_memory = 0
        self._seq = 0
        self._fd = -1
        self._lock_fd = -1
        self._thread: threading.Thread | None = None

    # -- request path -------------------------------------------------------------------------

    def record(self, record: LedgerRecord) -> None:
        line = orjson.dumps(as_row(record)) + b"\n"
        with self._lock:
            os.write(self._fd, line)
            self._pending.append(record)
            count = len(self._pending)
            if count == 1:
                self._work.notify()  # a no-op unless the writer sleeps for want of work
            full = count >= self._batch
        self.stats.recorded += 1
        if full:
            self._wake.set()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        # The folder appears under its name only with its lock already held: a process
        # starting beside us (another worker) must never see it unlocked, take it for a dead
        # one's, adopt it and remove it under our feet.
        self._root.mkdir(parents=True, exist_ok=True)
        staging = self._root / f".{self._dir.name}"
        staging.mkdir()
        self._lock_fd = os.open(staging / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        staging.rename(self._dir)
        self._fd = self._open_segment()
        self._thread = threading.Thread(target=self._run, name="strata-ledger", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the writer after writing everything queued (bounded by ``timeout_s``)."""
        if self._thread is None:
            return
        self._drain_deadline = time.monotonic() + timeout_s
        self._stop.set()
        with self._lock:
            self._work.notify()
        self._wake.set()
        self._thread.join(timeout=timeout_s + 5)
        self._thread = None
        os.close(self._fd)
        empty = not self._backlog and not self._pending
        if empty:
            with contextlib.suppress(OSError):
                for leftover in self._dir.glob("*.jsonl"):
                    leftover.unlink()
                (self._dir / "lock").unlink()
                self._dir.rmdir()
        else:
            log.warning(
                "ledger: %d records not yet written stay in %s and are replayed at next start",
                self.backlog,
                self._dir,
            )
        os.close(self._lock_fd)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything recorded so far is committed; True if it was in time."""
        target = self.stats.recorded
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stats.written >= target and not self._backlog:
                return True
            self._wake.set()
            time.sleep(0.01)
        return False

    @property
    def spilled(self) -> int:
        """Buffered records kept on disk only (past the memory cap)."""
        return sum(count for _, kept, count in self._backlog if kept is None)

    @property
    def backlog(self) -> int:
        return sum(count for _, _, count in self._backlog) + len(self._pending)

    # -- writer thread ------------------------------------------------------------------------

    _drain_deadline = 0.0

    def _open_segment(self) -> int:
        self._seq += 1
        path = self._dir / f"{self._seq:08d}.jsonl"
        return os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)

    def _seal(self) -> None:
        with self._lock:
            if not self._pending:
                return
            old_fd, old_seq = self._fd, self._seq
            self._fd = self._open_segment()
            records, self._pending = self._pending, []
        os.fsync(old_fd)
        os.close(old_fd)
        self._queue(self._dir / f"{old_seq:08d}.jsonl", records)

    def _queue(self, path: Path, records: list[LedgerRecord]) -> None:
        if self._in_memory + len(records) > self._memory_cap:
            self._backlog.append((path, None, len(records)))
            return
        self._in_memory += len(records)
        self._backlog.append((path, records, len(records)))

    def _run(self) -> None:
        self._replay_dead()
        backoff = self._interval
        quiet = False  # the last pass found nothing new and nothing left to retry
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                if quiet:
                    self._sleep_until_work()
                self._wake.wait(backoff)
                self._wake.clear()
            self.rounds += 1
            with self._lock:
                fresh = bool(self._pending)
            self._seal()
            ok = self._write_backlog()
            quiet = ok and not fresh
            backoff = self._interval if ok else min(max(backoff * 2, 0.25), 5.0)
            if stopping and (ok or time.monotonic() > self._drain_deadline):
                return
            if stopping:
                time.sleep(0.1)

    def _sleep_until_work(self) -> None:
        # Without a timeout: record() notifies on the first record, close() on stop.
        with self._lock:
            while not self._pending and not self._stop.is_set():
                self.asleep = True
                self._work.wait()
            self.asleep = False

    def _write_backlog(self) -> bool:
        while self._backlog:
            path, kept, count = self._backlog[0]
            records = kept if kept is not None else _parse(path)
            try:
                self._insert(records)
            except StoreUnavailable as exc:
                self.stats.failures += 1
                if self.stats.failures == 1 or self.stats.failures % 50 == 0:
                    log.warning(
                        "ledger: database unreachable, %d records buffered in %s (%s)",
                        self.backlog,
                        self._dir,
                        exc,
                    )
                return False
            self.stats.written += len(records)
            self._backlog.popleft()
            if kept is not None:
                self._in_memory -= count
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return True

    def _insert(self, records: Iterable[LedgerRecord]) -> None:
        rows = [as_row(r) for r in records]
        with self._db.transaction() as cur:
            cur.insert_new("ledger", COLUMNS, rows, "request_id")

    def _replay_dead(self) -> None:
        if not self._root.exists():
            return
        for folder in sorted(self._root.iterdir()):
            if folder == self._dir or folder.name.startswith(".") or not folder.is_dir():
                continue  # ours, or one being created (see start)
            lock = folder / "lock"
            try:
                fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process owns it
                continue
            # Its owner is gone: adopt the segments into our backlog (written oldest first).
            count = 0
            for segment in sorted(folder.glob("*.jsonl")):
                records = _parse(segment)
                count += len(records)
                target = self._dir / f"replay-{folder.name}-{segment.name}"
                segment.rename(target)
                self._queue(target, records)
            self.stats.replayed += count
            self.stats.recorded += count
            lock.unlink()
            os.close(fd)
            with contextlib.suppress(OSError):
                folder.rmdir()
            if count:
                log.info("ledger: replaying %d records left by %s", count, folder.name)
