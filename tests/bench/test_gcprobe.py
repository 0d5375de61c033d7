"""bench/_gcprobe rewrites its file in place: the gateway's event loop must not rename over it,
since freeing the replaced file's blocks can wait on a synchronous discard (``discard`` mount)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

PROBE = Path(__file__).resolve().parents[2] / "bench" / "_gcprobe"

_CHILD = """
import gc, json, os, sys
path = os.environ["STRATA_BENCH_GC_FILE"]
seen = []
for n in range(5):
    keep = [[i] for i in range(1000 * (5 - n))]  # varying sizes: the document changes length
    gc.collect()
    st = os.stat(path)
    seen.append([st.st_ino, st.st_size])
print(json.dumps(seen))
"""


def test_the_probe_overwrites_one_file_and_it_stays_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "gc.json"
    env = {**os.environ, "PYTHONPATH": str(PROBE), "STRATA_BENCH_GC_FILE": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = orjson.loads(done.stdout)
    inodes = {ino for ino, _ in seen}
    assert len(inodes) == 1  # never replaced
    sizes = [size for _, size in seen]
    assert sizes == sorted(sizes)  # never truncated
    doc = orjson.loads(path.read_bytes())  # padding is whitespace
    assert len(doc["full_ms"]) >= 5
