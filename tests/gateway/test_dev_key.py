"""Issue 7, item 9: the dev key file is created atomically, never empty, and kept private."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from gateway.auth import build_key_store, dev_key
from gateway.errors import ConfigError

STARTS = 24


def _start(
    home: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    barrier.wait(30)
    try:
        out.put(("ok", dev_key(Path(home), None)))
    except BaseException as exc:  # report, so the parent can show what went wrong
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def test_simultaneous_starts_agree_on_one_key(tmp_path: Path) -> None:
    # The old exists()-then-O_EXCL code crashed or read an empty key in a third of such starts.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(STARTS)
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_start, args=(str(tmp_path), barrier, out)) for _ in range(STARTS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert [kind for kind, _ in results] == ["ok"] * STARTS, results
    keys = {key for _, key in results}
    assert len(keys) == 1
    assert (tmp_path / "dev-key").read_text().strip() == keys.pop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-key"]  # no temp files left


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dev-key").write_text("\n")
    with pytest.raises(ConfigError, match="dev-key is empty"):
        build_key_store(tmp_path, None, False)


def test_an_empty_configured_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STRATA_DEV_KEY is set but empty"):
        build_key_store(tmp_path, "  ", False)


def test_a_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dev-key"
    path.write_text("sk-strata-shared\n")
    os.chmod(path, 0o644)
    caplog.set_level(logging.WARNING)
    store = build_key_store(tmp_path, None, False)
    assert store.authenticate("sk-strata-shared") is not None
    assert "can be read by other users (mode 644)" in caplog.text
    assert "sk-strata-shared" not in caplog.text


def test_a_private_key_file_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build_key_store(tmp_path, None, False)
    assert stat.S_IMODE((tmp_path / "dev-key").stat().st_mode) == 0o600
    caplog.set_level(logging.WARNING)
    build_key_store(tmp_path, None, False)
    assert "can be read" not in caplog.text
