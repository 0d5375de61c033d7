"""A local base that fails to load is logged when it fails, not at the first request."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.config import LocalBase
from gateway.providers.local import LocalProvider


async def test_preload_failure_is_logged_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-model-here"
    provider = LocalProvider({"broken": LocalBase(path=str(missing))})
    with caplog.at_level(logging.ERROR, logger="strata.local"):
        provider.preload("broken")
        for _ in range(600):  # the load runs in a thread; no request is ever made
            if any("failed to load" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    messages = [r.getMessage() for r in caplog.records]
    assert any("'broken' failed to load" in m and "ModelError" in m for m in messages), messages
    assert any(str(missing) in m for m in messages)  # the cause names the folder
    assert not provider.ready()
