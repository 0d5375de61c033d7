"""Acceptance 4: nothing is lost. A gateway process killed with SIGKILL mid-run and restarted
has every call that got a 2xx in the ledger exactly once; and while its PostgreSQL is
unreachable for 5 s the calls keep being served and their records are written afterwards.

The outage is made with a loopback TCP proxy between this test's gateway and the machine's
shared PostgreSQL (cut, then restored): stopping the real server would break other people's
tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway.accounting.store import Database
from tests.accounting.gateways import ADMIN_KEY, GatewayProcess, chat, write_config
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.fakes.tcp_proxy import TcpProxy


class Run:
    """``total`` calls at ``concurrency``, in a thread; a worker whose gateway is gone waits
    for it to come back before its next call."""

    def __init__(self, url: str, total: int, concurrency: int) -> None:
        self.url, self.total, self.concurrency = url, total, concurrency
        self.ok: list[str] = []  # request ids of 2xx answers
        self.failed = 0
        self.other_status: list[int] = []
        self._next = 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float = 120) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the run did not finish"

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "condition never met"
            time.sleep(0.01)

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._worker(client) for _ in range(self.concurrency)))

    async def _worker(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        while self._next < self.total:
            self._next += 1
            try:
                r = await client.post(
                    self.url + "/v1/chat/completions", json=chat(max_tokens=20), headers=headers
                )
            except httpx.TransportError:
                self.failed += 1
                await self._wait_ready(client)
                continue
            if 200 <= r.status_code < 300:
                self.ok.append(r.headers["x-strata-request-id"])
            else:
                self.other_status.append(r.status_code)

    async def _wait_ready(self, client: httpx.AsyncClient) -> None:
        for _ in range(600):
            try:
                if (await client.get(self.url + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


def slow(latency_s: float) -> Callable[[FakeRequest], Reply]:
    return lambda r: Reply(text="ok", input_tokens=3, output_tokens=2, latency_s=latency_s)


def ledger_ids(db: Database) -> dict[str, int]:
    return dict(db.query("SELECT request_id, COUNT(*) FROM ledger GROUP BY request_id"))


@contextmanager
def running(
    tmp_path: Path, wire: BedrockWireServer, database_url: str, answered: int
) -> Iterator[tuple[GatewayProcess, Run]]:
    """A gateway on ``database_url`` and a 500-call run at c=16 against it, handed over once
    ``answered`` calls got a 2xx; the gateway is stopped gracefully (ledger drained) after."""
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(tmp_path / "strata.yaml", wire.endpoint_url)
    gateway = GatewayProcess(home, config, {"STRATA_DATABASE_URL": database_url})
    gateway.start()
    run = Run(gateway.url, 500, 16)
    run.start()
    try:
        run.wait_until(lambda: len(run.ok) >= answered)
        yield gateway, run
        run.join()
    finally:
        gateway.stop()


def test_kill_9_mid_run_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    with (
        BedrockWireServer(slow(0.03)) as wire,
        running(tmp_path, wire, pg_url, 150) as (
            gateway,
            run,
        ),
    ):
        gateway.kill()  # SIGKILL: no shutdown, no drain
        gateway.launch()  # same home and port: replays the dead process's segments
        gateway.wait_ready()
    assert run.failed > 0, "the kill should have cut some calls"
    assert len(run.ok) > 150 and not run.other_status
    db = Database(pg_url, tmp_path / "check")
    found = ledger_ids(db)
    missing = [rid for rid in run.ok if rid not in found]
    assert not missing, f"{len(missing)} answered calls missing from the ledger"
    assert all(found[rid] == 1 for rid in run.ok)
    # Every segment was written and removed: the dead process's folder too.
    assert not list((home / "ledger-wal").rglob("*.jsonl"))
    print(f"\nkill -9: {len(run.ok)} 2xx, {run.failed} cut, {len(found)} in the ledger")
    db.close()


def test_postgres_unreachable_for_5s_mid_run(tmp_path: Path, pg_url: str) -> None:
    Database(pg_url, tmp_path / "setup").migrate()
    with TcpProxy("127.0.0.1", 5432) as proxy, BedrockWireServer(slow(0.25)) as wire:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        with running(tmp_path, wire, url, 100) as (_, run):
            proxy.cut()
            cut_at = len(run.ok)
            time.sleep(5)
            during = len(run.ok) - cut_at
            proxy.restore()
    assert during > 0, "calls must keep being served while the database is away"
    assert len(run.ok) == 500 and run.failed == 0 and not run.other_status
    db = Database(pg_url, tmp_path / "check")
    found = ledger_ids(db)
    assert sorted(found) == sorted(run.ok)
    assert set(found.values()) == {1}
    print(f"\nPostgreSQL away 5 s: {during} calls served meanwhile; all 500 in the ledger")
    db.close()
