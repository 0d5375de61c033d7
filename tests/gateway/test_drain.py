"""Graceful drain (issue 17, acceptance 4): SIGTERM during a 32-way load of streams and plain
calls cuts nothing, the ledger holds every answered request exactly once, and the process exits
within the drain bound; with one worker and with two (``--workers 2``: a supervisor over two
processes sharing the port and the SQLite ledger).

The only timing asserted is the acceptance point, "exits within the bound", with a bound far
above what the drain needs (the longest call lasts about a second).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.accounting.store import Database
from tests.accounting.conftest import REDIS_URL, redis_namespace
from tests.accounting.gateways import ADMIN_KEY, GatewayProcess, chat, write_config
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.drain_load import KINDS, DrainLoad

WORDS = 16
TEXT = "".join(f"w{i} " for i in range(WORDS)).rstrip()
DRAIN_S = 60.0
PLAIN_S, FIRST_EVENT_S, EVENT_INTERVAL_S = 0.8, 0.2, 0.05
# The least time a call of each kind takes from its start: the fake holds it that long after it
# arrives, and it arrives after it started. A call started less than this before the signal was
# still running at the signal.
SHORTEST_S = {
    "sdk_plain": PLAIN_S,
    "sdk_stream": FIRST_EVENT_S + WORDS * EVENT_INTERVAL_S,
    "raw_stream": FIRST_EVENT_S + WORDS * EVENT_INTERVAL_S,
}
SIGNAL_MARGIN_S = 0.2  # left to the signal to reach the gateway while they still run


def _slow(request: FakeRequest) -> Reply:
    # A stream: 0.2 s to the first event, then one word every 50 ms (about 1 s in all); a plain
    # call: 0.8 s. Long enough that most of the 32 are still running at the signal.
    latency_s = FIRST_EVENT_S if request.stream else PLAIN_S
    return Reply(text=TEXT, latency_s=latency_s, event_interval_s=EVENT_INTERVAL_S)


@pytest.fixture
def wire() -> Iterator[BedrockWireServer]:
    with BedrockWireServer(_slow) as server:
        yield server


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with redis_namespace() as prefix:
        yield prefix


def _gateway(
    tmp_path: Path, wire: BedrockWireServer, env: dict[str, str], yaml: str = ""
) -> GatewayProcess:
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(tmp_path / "strata.yaml", wire.endpoint_url)
    config.write_text(config.read_text() + yaml, encoding="utf-8")
    base = {"STRATA_DRAIN_S": str(DRAIN_S), "STRATA_LOG_LEVEL": "INFO"}
    return GatewayProcess(home, config, {**base, **env})


def _ledger(home: Path) -> dict[str, int]:
    db = Database(None, home)
    try:
        return dict(db.query("SELECT request_id, COUNT(*) FROM ledger GROUP BY request_id"))
    finally:
        db.close()


def _log(gateway: GatewayProcess) -> str:
    return (gateway.home.parent / f"gateway-{gateway.port}.log").read_text(errors="replace")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_cuts_nothing(
    tmp_path: Path, wire: BedrockWireServer, redis_prefix: str, workers: int
) -> None:
    env = {"STRATA_WORKERS": str(workers)}
    if workers > 1:
        env.update(STRATA_REDIS_URL=REDIS_URL, STRATA_REDIS_PREFIX=redis_prefix)
    # EMF lines once an hour: what the file holds after exit was flushed by the drain.
    emf = tmp_path / "emf.jsonl"
    yaml = f"cloudwatch: {{mode: emf, path: {emf}, period_s: 3600}}\n"
    gateway = _gateway(tmp_path, wire, env, yaml)
    gateway.start()
    load = DrainLoad(gateway.url, TEXT, concurrency=32)
    load.start()
    try:
        deadline = time.monotonic() + 120
        while load.answered < 64:
            assert time.monotonic() < deadline, f"no load: {load.outcomes[-3:]}"
            time.sleep(0.05)
        while True:
            load.hold()
            # Every request begun has reached the gateway (and the fake, which holds it 0.2-0.8 s
            # before answering): none is still in the client, which may lag on a loaded machine.
            while len(wire.calls) < load.started:
                assert time.monotonic() < deadline, f"{len(wire.calls)} of {load.started} arrived"
                time.sleep(0.005)
            signalled = time.monotonic()
            # Signal only while a call of each kind is sure to be running; plain calls, the
            # shortest, may all have ended while the last ones begun reached the fake: then
            # let the load run on and look again.
            sure = {
                kind
                for kind, started in load.running()
                if signalled - started < SHORTEST_S[kind] - SIGNAL_MARGIN_S
            }
            if sure == set(KINDS):
                break
            assert time.monotonic() < deadline, f"never all kinds in flight at once: {sure}"
            load.release()
            time.sleep(0.05)
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGTERM)
        load.stop()
        code = gateway.proc.wait(timeout=DRAIN_S + 60)
        exited = time.monotonic()
        load.join()
    finally:
        gateway.kill()

    assert code == 0, _log(gateway)[-3000:]
    assert exited - signalled < DRAIN_S, "the process outlived its drain bound"
    failed = [o for o in load.outcomes if not o.complete]
    assert not failed, f"{len(failed)} requests cut or wrong, first: {failed[0]}"
    in_flight = [o for o in load.outcomes if o.started < signalled < o.ended]
    kinds = {o.kind for o in in_flight}
    # The signal landed mid-load: streams of both kinds and plain calls were running.
    assert kinds == {"sdk_stream", "raw_stream", "sdk_plain"}, kinds
    assert len(in_flight) >= 16, len(in_flight)

    answered = [o.request_id for o in load.outcomes]
    assert all(answered) and len(set(answered)) == len(answered)
    ledger = _ledger(gateway.home)
    missing, extra = set(answered) - set(ledger), set(ledger) - set(answered)
    assert not missing and not extra, (len(missing), len(extra))
    assert set(ledger.values()) == {1}
    # Flushed, not left for a replay: no write-ahead segment still holds a record.
    leftovers = [p for p in (gateway.home / "ledger-wal").rglob("*.jsonl") if p.stat().st_size]
    assert leftovers == []
    # Metrics flushed at the drain: every worker's last period, one EMF line per series.
    documents = [orjson.loads(line) for line in emf.read_bytes().splitlines()]
    assert sum(d["Requests"] for d in documents) == len(answered), documents
    if workers > 1:
        text = _log(gateway)
        assert "[worker 0]" in text and "[worker 1]" in text
        assert "supervisor: every worker has exited" in text


def test_readyz_says_draining_while_requests_finish(
    tmp_path: Path, wire: BedrockWireServer
) -> None:
    """With ``drain_delay_s``, the gateway keeps accepting after SIGTERM and answers /readyz
    with 503 ``draining`` (so a load balancer stops sending) while a stream runs on."""
    wire.handler = lambda r: Reply(text=TEXT, latency_s=0.1, event_interval_s=0.2)  # ~3 s
    gateway = _gateway(tmp_path, wire, {"STRATA_DRAIN_DELAY_S": "30"})
    gateway.start()
    try:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        body = {**chat(max_tokens=50), "stream": True}
        with (
            httpx.Client(timeout=60) as client,
            client.stream(
                "POST", gateway.url + "/v1/chat/completions", json=body, headers=headers
            ) as stream,
        ):
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            assert gateway.proc is not None
            gateway.proc.send_signal(signal.SIGTERM)
            with httpx.Client(timeout=10) as probe:
                deadline = time.monotonic() + 30
                while (ready := probe.get(gateway.url + "/readyz")).status_code == 200:
                    assert time.monotonic() < deadline, "/readyz never said draining"
                    time.sleep(0.05)
            assert ready.status_code == 503
            assert ready.json() == {"status": "draining"}
            assert ready.headers["connection"] == "close"
            rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
    finally:
        gateway.stop()


def test_past_the_bound_the_gateway_exits_and_counts_what_it_cut(
    tmp_path: Path, wire: BedrockWireServer
) -> None:
    """A stream longer than ``drain_s`` is cut at the bound; the exit is logged with the count
    and the cut call is still in the ledger, once."""
    wire.handler = lambda r: Reply(text=TEXT * 10, latency_s=0.1, event_interval_s=0.5)  # 80 s
    gateway = _gateway(tmp_path, wire, {"STRATA_DRAIN_S": "2"})
    gateway.start()
    try:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        body = {**chat(max_tokens=50), "stream": True}
        with (
            httpx.Client(timeout=60) as client,
            client.stream(
                "POST", gateway.url + "/v1/chat/completions", json=body, headers=headers
            ) as stream,
        ):
            request_id = stream.headers["x-strata-request-id"]
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            assert gateway.proc is not None
            signalled = time.monotonic()
            gateway.proc.send_signal(signal.SIGTERM)
            with pytest.raises(httpx.HTTPError):
                for _ in lines:
                    pass
        gateway.proc.wait(timeout=60)
        assert time.monotonic() - signalled < 2 + 30  # the bound, with slack for a loaded box
    finally:
        gateway.kill()
    assert "cutting 1 request(s) still in flight" in _log(gateway)
    assert _ledger(gateway.home) == {request_id: 1}
