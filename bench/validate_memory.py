"""Peak memory of ``customize validate`` on a large JSONL file, against the same run on a tiny one.

    python bench/validate_memory.py [--size-mb 200] [--dir DIR] [--json]

The dataset is generated in a temporary directory (never committed). Each validation runs in its
own process; its peak resident set size comes from ``os.wait4``, which reports that child alone.
Printed ratios compare the big run with the tiny run and with the file size, measured in one go.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LINE_BYTES = 2048


@dataclass(frozen=True)
class Run:
    exit_code: int
    records: int
    problems: int
    peak_rss_bytes: int
    seconds: float


def write_dataset(path: Path, size_bytes: int) -> int:
    """Valid prompt/completion records of about LINE_BYTES each, up to ``size_bytes``."""
    filler = "lorem ipsum dolor sit amet " * (LINE_BYTES // 27)
    records = written = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < size_bytes:
            record = {"prompt": f"Question {records}: {filler}", "completion": f"Answer {records}."}
            line = json.dumps(record) + "\n"
            handle.write(line)
            written += len(line)
            records += 1
    return records


def measure(path: Path) -> Run:
    command = [sys.executable, "-m", "customize", "customize", "validate", str(path)]
    command += ["--format", "prompt-completion", "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    stats = json.loads(output)["stats"]
    return Run(
        exit_code=process.returncode,
        records=stats["records"],
        problems=stats["problems"],
        peak_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports kilobytes
        seconds=round(time.perf_counter() - started, 2),
    )


def run(size_mb: float, directory: Path) -> dict[str, object]:
    big, small = directory / "big.jsonl", directory / "small.jsonl"
    written = write_dataset(big, int(size_mb * 1024 * 1024))
    write_dataset(small, 16 * 1024)
    large_run, small_run = measure(big), measure(small)
    file_bytes = big.stat().st_size
    return {
        "file_bytes": file_bytes,
        "records_written": written,
        "large": asdict(large_run),
        "small": asdict(small_run),
        "peak_rss_ratio_large_to_small": round(
            large_run.peak_rss_bytes / small_run.peak_rss_bytes, 3
        ),
        "peak_rss_to_file_size": round(large_run.peak_rss_bytes / file_bytes, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=200.0)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the dataset (default: a temp dir)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        result = run(args.size_mb, Path(directory))
    if args.json:
        print(json.dumps(result))
        return
    large, small = result["large"], result["small"]
    assert isinstance(large, dict) and isinstance(small, dict)
    print(f"file: {result['file_bytes']:,} bytes, {result['records_written']:,} records")
    print(
        f"validate (large): peak RSS {large['peak_rss_bytes'] / 1e6:.1f} MB "
        f"in {large['seconds']} s, exit {large['exit_code']}"
    )
    print(f"validate (16 KB): peak RSS {small['peak_rss_bytes'] / 1e6:.1f} MB")
    print(f"peak RSS ratio large/small: {result['peak_rss_ratio_large_to_small']}")
    print(f"peak RSS / file size: {result['peak_rss_to_file_size']}")


if __name__ == "__main__":
    main()
