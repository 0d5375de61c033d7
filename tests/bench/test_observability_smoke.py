"""A tiny run of ``bench.observability``: the fake called directly and both gateways measured,
every answer right, and the "on" gateway's exporters really on (its access log holds a line per
call). No timing is asserted (the machine is shared)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[2]


def test_a_tiny_run_measures_direct_off_and_on(tmp_path: Path) -> None:
    out = tmp_path / "observability.json"
    argv = [sys.executable, "-m", "bench.observability", "--requests", "20"]
    argv += ["--seq-requests", "10", "--warmup", "4", "--concurrency", "4", "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    direct = report["direct"]["converse"]["seq"]
    assert direct["ok"] == 10 and direct["latency_ms"]["p50"] > 0
    served_on = 0
    for name in ("off", "on"):
        for surface in ("openai", "converse"):
            row = report["gateways"][name][surface]
            for label, count in (("seq", 10), ("c4", 20)):
                assert row[label]["ok"] == count and row[label]["errors"] == 0
                # /proc counts CPU in 10 ms ticks: a run this short may read 0.
                assert math.isfinite(row[label]["cpu_ms_per_request"])
                assert row[label]["cpu_ms_per_request"] >= 0
                served_on += count if name == "on" else 0
    assert report["access_log_lines"] >= served_on
    assert "added p50 seq ms" in done.stdout
    assert f"seq p50 {direct['latency_ms']['p50']:.2f} ms" in done.stdout
