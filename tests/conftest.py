"""Isolation for every test: no AWS credentials or config from the machine, a private
STRATA_HOME, and fresh settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import get_settings


def cpu_share() -> int:
    """The cores one test process may use: all of them, or its share under pytest-xdist."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return max(1, (os.cpu_count() or 1) // workers)


def pytest_configure(config: pytest.Config) -> None:
    # Two xdist workers training at once with torch's default (a thread per core each) would
    # oversubscribe the cores; torch reads this when it is first imported, in here and in the
    # subprocesses the tests start.
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
        os.environ.setdefault("OMP_NUM_THREADS", str(cpu_share()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the files that train a model (``slow``) go first: `--dist loadfile`
    hands files out in this order, so the longest ones no longer start last and keep one worker
    busy after the other has finished. A single process keeps the collection order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: file order kept otherwise


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "STRATA_")):
            monkeypatch.delenv(name)
    aws = tmp_path_factory.mktemp("aws")
    (aws / "config").write_text("")
    (aws / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    # Instance metadata lookups would hang on a machine with no network.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    home = tmp_path_factory.mktemp("strata-home")
    monkeypatch.setenv("STRATA_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
