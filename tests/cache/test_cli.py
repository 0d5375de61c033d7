"""``strata cache stats|flush [--tenant T]`` against a running gateway, and the admin routes'
access rules."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli import _mount, app
from tests.cache.conftest import cached_gateway, chat, tenant_key
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.harness import TEST_KEY
from tests.gateway.pipeline_harness import AUTH


def _cli(*args: str) -> dict[str, object]:
    if not any(group.name == "cache" for group in app.registered_groups):
        _mount()
    result = CliRunner().invoke(app, ["cache", *args, "--key", TEST_KEY, "--json"])
    assert result.exit_code == 0, result.output
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_stats_and_flush_by_tenant(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    other = tenant_key(tmp_path, "globex")
    with cached_gateway(tmp_path, wire, "memory") as url:
        mine, theirs = AUTH, {"Authorization": f"Bearer {other}"}
        for headers in (mine, theirs, mine):
            r = httpx.post(f"{url}/v1/chat/completions", json=chat("q"), headers=headers)
            assert r.status_code == 200
        stats = _cli("stats", "--url", url)
        assert (stats["hits"], stats["misses"], stats["entries"]) == (1, 2, 2)
        assert _cli("flush", "--tenant", "globex", "--url", url)["flushed"] == 1
        states = [
            httpx.post(f"{url}/v1/chat/completions", json=chat("q"), headers=h).headers[
                "x-strata-cache"
            ]
            for h in (mine, theirs)
        ]
        assert states == ["hit", "miss"]  # only globex's entry went
        # A tenant key may neither read the counters nor flush.
        assert httpx.get(f"{url}/admin/cache", headers=theirs).status_code == 403
        assert httpx.post(f"{url}/admin/cache/flush", headers=theirs).status_code == 403
        assert httpx.get(f"{url}/admin/cache").status_code == 401
        assert _cli("flush", "--url", url)["flushed"] == 2
