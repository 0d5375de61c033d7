"""Isolation for every test: no AWS credentials or config from the machine, a private
STRATA_HOME, and fresh settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import get_settings


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
