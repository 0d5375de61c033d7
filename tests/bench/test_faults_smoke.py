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


def test_pacing_bench_reads_both_processes_at_every_rate() -> None:
    argv = [sys.executable, "-m", "bench.pacing", "--rates", "0,100", "--requests", "10"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    through, direct = done.stdout.split("the fake called directly")
    rows = [line.split() for line in through.splitlines() if line.split()[:1] in (["b2b"], ["100"])]
    assert [r[0] for r in rows] == ["b2b", "100"]
    for r in rows:  # rate, p50, gateway ms, x, fake ms, x: both processes did measurable work
        assert float(r[2]) > 0 and float(r[4]) > 0
    assert rows[0][3] == rows[0][5] == "1.00"  # back to back is each column's reference
    assert [line.split()[0] for line in direct.splitlines()[2:4]] == ["b2b", "100"]
