"""Concurrent requests from the test process, spread round-robin over replicas."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Answer:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-strata-request-id")

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code: str | None = self.body["error"].get("code")
            return code
        return None


async def _one(client: httpx.AsyncClient, url: str, key: str, body: dict[str, Any]) -> Answer:
    r = await client.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    try:
        payload = r.json()
    except ValueError:
        payload = r.text
    return Answer(r.status_code, payload, r.headers)


async def burst_async(
    urls: list[str],
    key: str,
    count: int,
    body: dict[str, Any] | list[dict[str, Any]],
    concurrency: int | None = None,
) -> list[Answer]:
    """``count`` calls at once (or ``concurrency`` at a time); a list of bodies is cycled."""
    bodies = body if isinstance(body, list) else [body]
    limit = concurrency or count
    gate = asyncio.Semaphore(limit)
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def run(i: int) -> Answer:
            async with gate:
                return await _one(client, urls[i % len(urls)], key, bodies[i % len(bodies)])

        return list(await asyncio.gather(*(run(i) for i in range(count))))


def burst(*args: Any, **kwargs: Any) -> list[Answer]:
    """``burst_async`` from synchronous test code."""
    return asyncio.run(burst_async(*args, **kwargs))


def wait_for_auth(url: str, key: str, want: int, timeout_s: float) -> float | None:
    """Poll ``GET /v1/models`` until ``key`` gets ``want`` (200 once a key created elsewhere
    arrives, 401 once a revocation does); the seconds it took, or None on timeout."""
    import time

    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < started + timeout_s:
            r = client.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
            if r.status_code == want:
                return time.monotonic() - started
            time.sleep(0.02)
    return None
