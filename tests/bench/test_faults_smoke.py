"""A tiny run of ``bench.faults``: every scenario is measured, printed and answered right."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]


def test_fault_bench_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    argv = [sys.executable, "-m", "bench.faults", "--requests", "40", "--concurrency", "4"]
    done = subprocess.run(
        [*argv, "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    runs = {r["scenario"]: r for r in report["runs"]}
    assert list(runs) == ["plain", "throttled", "throttled-generous", "hard-down"]
    for name, r in runs.items():
        assert f"| {name} |" in done.stdout
        assert r["ok"] + r["errors"] == 40
        assert r["latency_ms"]["p99"] >= r["latency_ms"]["p50"] > 0
    # Counted by the fake: one attempt per request without faults, more with them.
    assert runs["plain"]["attempts_per_request"] == 1.0
    assert runs["plain"]["success_rate"] == 1.0
    assert runs["throttled"]["attempts_per_request"] > 1.0
    assert runs["hard-down"]["attempts_per_request"] > 1.0


def test_pipeline_cost_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.pipeline_cost import main

    main(["--calls", "50"])
    out = capsys.readouterr().out
    assert "provider alone:" in out and "through the pipeline:" in out
