"""``strata serve --workers N``: settings, the port group, refusals, and a supervisor that
restarts a worker that died."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.accounting.store import Database
from gateway.config import server_settings
from gateway.settings import Settings, usable_cores
from gateway.workers import bind_group
from tests.accounting.conftest import REDIS_URL, redis_namespace
from tests.accounting.gateways import ADMIN_KEY, GatewayProcess, chat, write_config
from tests.fakes.bedrock_wire import BedrockWireServer


def test_workers_from_yaml_env_and_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATA_WORKERS", raising=False)
    config = tmp_path / "strata.yaml"
    config.write_text("server: {workers: 3, drain_s: 12}\n", encoding="utf-8")
    from_file = server_settings(Settings(config=config))
    assert (from_file.workers, from_file.drain_s, from_file.drain_delay_s) == (3, 12.0, 0.0)
    assert server_settings(Settings(config=config, workers=1)).workers == 1  # flag wins
    monkeypatch.setenv("STRATA_WORKERS", "auto")
    assert server_settings(Settings(config=config)).workers == usable_cores()  # env wins
    config.write_text("server: {workers: auto}\n", encoding="utf-8")
    monkeypatch.delenv("STRATA_WORKERS")
    assert server_settings(Settings(config=config)).workers == usable_cores()
    assert usable_cores() == len(os.sched_getaffinity(0))


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", "serve", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_several_workers_need_redis(tmp_path: Path) -> None:
    out = _serve({"STRATA_HOME": str(tmp_path)}, "--workers", "2", "--port", "1")
    assert out.returncode == 2
    assert "2 workers need STRATA_REDIS_URL" in out.stderr


def test_bad_workers_value_is_named(tmp_path: Path) -> None:
    out = _serve({"STRATA_HOME": str(tmp_path), "STRATA_WORKERS": "0"})
    assert out.returncode == 2
    assert "STRATA_WORKERS" in out.stderr


def test_port_group_refuses_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError):
            bind_group("127.0.0.1", port, 2)
    group = bind_group("127.0.0.1", 0, 3)
    try:
        assert len({s.getsockname()[1] for s in group}) == 1
        # Another server cannot join the group (it would silently take a share of the traffic).
        with pytest.raises(OSError):
            bind_group("127.0.0.1", group[0].getsockname()[1], 2)
    finally:
        for sock in group:
            sock.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with redis_namespace() as prefix:
        yield prefix


def _workers(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return sorted(int(c) for c in children)


def _post(gateway: GatewayProcess) -> str:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    # A new connection each time: the kernel spreads them over both workers' sockets.
    r = httpx.post(gateway.url + "/v1/chat/completions", json=chat(), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.headers["x-strata-request-id"]


def _ledger(home: Path) -> dict[str, int]:
    db = Database(None, home)
    try:
        return dict(db.query("SELECT request_id, COUNT(*) FROM ledger GROUP BY request_id"))
    finally:
        db.close()


@contextlib.contextmanager
def _two_workers(
    tmp_path: Path, redis_prefix: str, **env: str
) -> Iterator[tuple[GatewayProcess, Path]]:
    """A started two-worker gateway over the wire fake, sharing Redis and ``home``'s SQLite;
    records stay in each worker's write-ahead segment for a minute, so which worker served a
    call shows there. Killed on the way out if the test did not stop it."""
    home = tmp_path / "home"
    home.mkdir()
    with BedrockWireServer() as wire:
        config = write_config(tmp_path / "strata.yaml", wire.endpoint_url)
        base = {
            "STRATA_WORKERS": "2",
            "STRATA_REDIS_URL": REDIS_URL,
            "STRATA_REDIS_PREFIX": redis_prefix,
            "STRATA_LEDGER_FLUSH_INTERVAL_S": "60",
        }
        gateway = GatewayProcess(home, config, {**base, **env})
        gateway.start()
        try:
            assert gateway.proc is not None
            yield gateway, home
        finally:
            gateway.kill()


def _serving(home: Path) -> set[int]:
    """Pids of the workers whose write-ahead segment holds records not yet written."""
    wal = (home / "ledger-wal").rglob("*.jsonl")
    return {int(p.parent.name.split("-")[0]) for p in wal if p.stat().st_size}


def test_a_dead_worker_is_restarted_and_its_ledger_segment_replayed(
    tmp_path: Path, redis_prefix: str
) -> None:
    """SIGKILL one of two workers while its ledger records are still only in its write-ahead
    segment (a flush interval of a minute): the supervisor restarts it, the new worker
    replays the dead one's segment, and after a drain the SQLite ledger both workers shared
    holds every answered call once."""
    with _two_workers(tmp_path, redis_prefix, STRATA_LOG_LEVEL="INFO") as (gateway, home):
        assert gateway.proc is not None
        first = _workers(gateway.proc.pid)
        assert len(first) == 2
        answered = [_post(gateway) for _ in range(20)]
        # One write-ahead folder per worker, both holding records not yet written.
        assert _serving(home) == set(first)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 90
        while len(now := _workers(gateway.proc.pid)) < 2 or first[0] in now:
            assert time.monotonic() < deadline, "the worker was not restarted"
            time.sleep(0.1)
        assert first[1] in now  # the other one went on serving
        gateway.wait_ready()
        answered += [_post(gateway) for _ in range(20)]
        gateway.proc.send_signal(signal.SIGTERM)
        assert gateway.proc.wait(timeout=90) == 0
    log = (tmp_path / f"gateway-{gateway.port}.log").read_text()
    assert re.search(r"supervisor: worker \d was killed by SIGKILL after .* restarting it", log)
    assert _ledger(home) == dict.fromkeys(answered, 1)


def test_workers_drain_when_their_supervisor_is_killed(tmp_path: Path, redis_prefix: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with BedrockWireServer() as wire:
        config = write_config(tmp_path / "strata.yaml", wire.endpoint_url)
        env = {"STRATA_WORKERS": "2", "STRATA_REDIS_URL": REDIS_URL}
        gateway = GatewayProcess(home, config, {**env, "STRATA_REDIS_PREFIX": redis_prefix})
        gateway.start()
        assert gateway.proc is not None
        workers = _workers(gateway.proc.pid)
        answered = [_post(gateway) for _ in range(5)]
        gateway.kill()  # SIGKILL: the supervisor cannot tell anyone
        deadline = time.monotonic() + 90
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            time.sleep(0.1)
    # They drained: the ledger was flushed, and the port is free again.
    assert _ledger(home) == dict.fromkeys(answered, 1)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not a listener
        sock.bind(("127.0.0.1", gateway.port))
        sock.listen()


def _scraped_requests(gateway: GatewayProcess) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.get(gateway.url + "/metrics", headers=headers, timeout=30)  # a new connection
    assert r.status_code == 200, r.text
    return sum(
        s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == "strata_requests_total"
    )


def test_metrics_answer_for_every_worker(tmp_path: Path, redis_prefix: str) -> None:
    """A scrape reaches one of the workers; before, it counted only that worker's calls."""
    with _two_workers(tmp_path, redis_prefix) as (gateway, home):
        assert gateway.proc is not None
        workers = _workers(gateway.proc.pid)
        answered = [_post(gateway) for _ in range(40)]
        assert _serving(home) == set(workers)  # both workers served some of the calls
        time.sleep(2.5)  # over two publication periods
        assert [_scraped_requests(gateway) for _ in range(10)] == [40.0] * 10
        gateway.proc.send_signal(signal.SIGTERM)
        assert gateway.proc.wait(timeout=90) == 0
    assert _ledger(home) == dict.fromkeys(answered, 1)
