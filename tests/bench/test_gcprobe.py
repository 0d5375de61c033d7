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


def _run_with_probe(child: str, path: Path) -> str:
    """Run ``child`` in a fresh interpreter with the probe loaded, writing to ``path``; its
    standard output."""
    env = {**os.environ, "PYTHONPATH": str(PROBE), "STRATA_BENCH_GC_FILE": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_probe_overwrites_one_file_and_it_stays_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "gc.json"
    seen = orjson.loads(_run_with_probe(_CHILD, path))
    inodes = {ino for ino, _ in seen}
    assert len(inodes) == 1  # never replaced
    sizes = [size for _, size in seen]
    assert sizes == sorted(sizes)  # never truncated
    doc = orjson.loads(path.read_bytes())  # padding is whitespace
    assert len(doc["full_ms"]) >= 5


_WALK_CHILD = """
import gc, json, sys
keep = [[i] for i in range(20000)]
gc.freeze()
called = []
def profile(frame, event, arg):
    if event == "c_call":
        called.append(getattr(arg, "__name__", ""))
sys.setprofile(profile)
gc.collect()
sys.setprofile(None)
print(json.dumps(sorted(set(called))))
"""


def test_the_probe_never_walks_the_frozen_heap_after_a_collection(tmp_path: Path) -> None:
    """``gc.get_freeze_count()`` walks the whole permanent generation: ~14 ms for the gateway's
    frozen start-up heap, on its event loop, after every full collection the probe timed."""
    path = tmp_path / "gc.json"
    called = orjson.loads(_run_with_probe(_WALK_CHILD, path))
    assert "pwrite" in called  # the probe ran and wrote its file
    assert "get_freeze_count" not in called
    assert orjson.loads(path.read_bytes())["full_ms"]
