"""Acceptance 6: generation for 8 concurrent requests never blocks the event loop."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.gateway.harness import TEST_KEY

# A generous bound: a blocked loop would stall /healthz for the whole generation.
HEALTH_BOUND_S = 1.0


async def _wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(600):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("local model never became ready")


@pytest.mark.slow
async def test_healthz_answers_while_eight_requests_generate(local_gateway: str) -> None:
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    text = "abcdefghij" * 12
    body = {
        "model": "default",
        "max_tokens": 160,
        "messages": [{"role": "user", "content": f"copy: {text}"}],
    }
    async with httpx.AsyncClient(base_url=local_gateway, timeout=300) as client:
        await _wait_ready(client)
        tasks = [
            asyncio.create_task(client.post("/v1/chat/completions", json=body, headers=headers))
            for _ in range(8)
        ]
        probes: list[float] = []
        while not all(t.done() for t in tasks):
            started = time.perf_counter()
            r = await client.get("/healthz")
            elapsed = time.perf_counter() - started
            if not all(t.done() for t in tasks):
                probes.append(elapsed)
                assert r.status_code == 200
            await asyncio.sleep(0.05)
        results = [t.result() for t in tasks]
    assert all(r.status_code == 200 for r in results)
    tokens = [r.json()["usage"]["completion_tokens"] for r in results]
    assert all(t > 0 for t in tokens)
    assert len(probes) >= 3, "generation finished before /healthz could be probed"
    assert max(probes) < HEALTH_BOUND_S, f"/healthz stalled {max(probes):.2f}s during generation"
