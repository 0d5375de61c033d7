"""Several workers, one /metrics: what each worker publishes merges into the figures one core
fed every call would hold, the worst breaker state wins, and a restarted worker carries on from
its predecessor's last figures."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.metrics import MetricsCore
from gateway.observability.peers import PeerMetrics, WorkerSlot, encode, merge, worst
from gateway.observability.prometheus import PrometheusExporter
from gateway.observability.record import CallRecord


def _record(rng: random.Random, i: int) -> CallRecord:
    failed = rng.random() < 0.2
    return CallRecord(
        request_id=f"r{i}",
        tenant=rng.choice(["acme", "globex"]),
        surface="openai",
        stream=False,
        alias=rng.choice(["haiku", "sonnet"]),
        target="bedrock:m",
        variant=rng.choice(["", "candidate"]),
        status=502 if failed else 200,
        error_class="upstream_error" if failed else None,
        refusal=None,
        attempts=rng.randint(0, 3),
        cache=rng.choice(["hit", "miss", "off"]),
        tokens=(rng.randint(0, 500), rng.randint(0, 200), 0, rng.randint(0, 9)),
        cost_pusd=None if rng.random() < 0.1 else rng.randint(0, 10**9),
        saved_pusd=rng.randint(0, 10**6),
        latency_s=rng.uniform(0.001, 3.0),
        upstream_s=rng.uniform(0.0, 2.0),
        overhead_s=rng.uniform(0.00005, 0.01),
        ttft_s=None if rng.random() < 0.5 else rng.uniform(0.001, 1.0),
        finish_reason="end_turn",
        wall_time=0.0,
    )


def _scrape(
    core: MetricsCore, breakers: list[tuple[str, str]]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = PrometheusExporter(core, lambda: breakers).render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_merged_workers_expose_what_one_core_fed_every_call_would() -> None:
    rng = random.Random(7)
    records = [_record(rng, i) for i in range(600)]
    whole = MetricsCore(tenant_label=True)
    workers = [MetricsCore(tenant_label=True) for _ in range(3)]
    for i, rec in enumerate(records):
        whole.record(rec)
        workers[i % 3].record(rec)
    merged = MetricsCore(tenant_label=True)
    for core in workers:
        merge(merged, encode(core, []))
    got, want = _scrape(merged, []), _scrape(whole, [])
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    assert (
        want[
            (
                "strata_requests_total",
                (("alias", "haiku"), ("target", "bedrock:m"), ("tenant", "acme"), ("variant", "")),
            )
        ]
        > 0
    )


def test_the_worst_breaker_state_of_any_worker_is_shown() -> None:
    states = [("a", "closed"), ("b", "open"), ("a", "half_open"), ("b", "closed"), ("c", "closed")]
    assert worst(states) == [("a", "half_open"), ("b", "open"), ("c", "closed")]


def test_a_restarted_worker_carries_on_from_its_predecessors_figures(tmp_path: Path) -> None:
    rng = random.Random(3)
    slot = WorkerSlot(1, tmp_path)

    async def life(records: list[CallRecord]) -> MetricsCore:
        core = MetricsCore()
        async with AsyncExitStack() as stack:
            await PeerMetrics(slot, core, lambda: [("bedrock:m", "open")], period_s=60).start(stack)
            for rec in records:
                core.record(rec)
        return core  # the last publication happened when the stack closed

    first = [_record(rng, i) for i in range(40)]
    second = [_record(rng, i) for i in range(40, 65)]
    asyncio.run(life(first))
    carried = asyncio.run(life(second))
    assert sum(s.requests for _, s in carried.series()) == 65
    # Another worker's view of the folder: worker 1's figures and its open breaker.
    other = PeerMetrics(WorkerSlot(0, tmp_path), MetricsCore(), lambda: [("bedrock:m", "closed")])
    merged, breakers = other.view()
    assert sum(s.requests for _, s in merged.series()) == 65
    assert breakers == [("bedrock:m", "open")]
    assert other.breaker_states() == [("bedrock:m", "open")]  # what the dashboard shows


def test_publishing_from_a_thread_while_the_loop_records_is_safe() -> None:
    """Publishing and scrapes read the live core from a thread while the event loop keeps
    recording (new series, new error classes, new statuses): they must never fail on a dict
    changing size under them, and what they read stays consistent with the records."""
    import sys
    import threading

    rng = random.Random(11)
    core = MetricsCore(tenant_label=True)
    failures: list[BaseException] = []
    stop = threading.Event()

    def publisher() -> None:
        while not stop.is_set():
            try:
                merge(MetricsCore(tenant_label=True), encode(core, []))
                PrometheusExporter(core, list).render()
            except BaseException as exc:  # the thread must report, not die silently
                failures.append(exc)
                return

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the GIL over often, so the two really interleave
    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        for i in range(20_000):
            rec = _record(rng, i)
            rec = rec.__class__(
                **{
                    **{f: getattr(rec, f) for f in rec.__slots__},
                    "tenant": f"t{i % 400}",
                    "status": 400 + i % 150,
                    "error_class": f"e{i % 300}",
                }
            )
            core.record(rec)
    finally:
        stop.set()
        thread.join(timeout=60)
        sys.setswitchinterval(switch)
    assert failures == []
    merged = MetricsCore(tenant_label=True)
    merge(merged, encode(core, []))
    assert sum(s.requests for _, s in merged.series()) == 20_000
