"""Large datasets are streamed: memory does not grow with the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import customize.datasets.validate as validate_module
from customize.datasets.formats import spec_for_format
from customize.datasets.validate import DatasetScan

BENCH = Path(__file__).resolve().parents[2] / "bench" / "validate_memory.py"


@pytest.mark.slow
def test_200mb_file_validates_in_bounded_memory(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--size-mb", "200", "--dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(completed.stdout)
    large, small = result["large"], result["small"]
    assert result["file_bytes"] >= 200 * 1024 * 1024
    assert large["exit_code"] == 0 and large["problems"] == 0
    assert large["records"] == result["records_written"] > 90_000
    # The whole file would be >200 MB in memory; streaming keeps the peak near the tiny run's.
    assert large["peak_rss_bytes"] < small["peak_rss_bytes"] + 32 * 1024 * 1024
    assert result["peak_rss_to_file_size"] < 0.5


def test_overlong_line_is_skipped_without_being_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_module, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(validate_module, "_CHUNK", 64)
    good = json.dumps({"prompt": "a", "completion": "b"})
    huge = json.dumps({"prompt": "x" * 5000, "completion": "b"})
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join([good, huge, good, '{"prompt": 1}']) + "\n")
    scan = DatasetScan(path, spec_for_format("prompt-completion"))
    problems = [(p.line, p.reason) for p in scan]
    assert problems[0] == (2, "record is longer than 1,000 bytes (not parsed)")
    assert [line for line, _ in problems] == [2, 4, 4]
    assert scan.stats.lines == 4 and scan.stats.bytes == path.stat().st_size
