"""``bench.saturation --timeline DIR``: each saturated run's per-request start, duration and
connection, and the kernel's TCP counters across it, to see where in a run the slow requests
fall and whether TCP (a retransmission, an accept-queue overflow) is behind them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

from bench._load import Samples
from bench._procs import _TICK_S, tree_tasks

# Counters that move when a loopback segment is lost or a listen queue overflows.
_WATCH = (
    "Retrans",
    "Timeout",
    "Listen",
    "Overflow",
    "Drop",
    "Prune",
    "Collapse",
    "DelayedACK",
    "Backlog",
    "Probe",
    "Spurious",
    "DSACK",
    "Reno",
    "Recover",
)


def snapshot(pid: int | None, port: int) -> tuple[dict[str, int], dict[str, list[float]], int, int]:
    return tcp_counters(), thread_delays(pid), io_stall_us(), upstream_connections(pid, port)


def upstream_connections(pid: int | None, port: int) -> int:
    """Established TCP connections ``pid`` holds other than those to its own ``port``: the
    gateway's pooled connections to the upstream."""
    ss = shutil.which("ss")
    if pid is None or ss is None:
        return -1
    out = subprocess.run(
        [ss, "-Htnp", "state", "established"], capture_output=True, text=True, check=False
    ).stdout
    mine = [line.split() for line in out.splitlines() if f"pid={pid}," in line]
    return sum(1 for f in mine if len(f) > 3 and not f[2].endswith(f":{port}"))


def tcp_counters() -> dict[str, int]:
    """The kernel's SNMP/netstat counters (``nstat -az``), or none if nstat is missing."""
    nstat = shutil.which("nstat")
    if nstat is None:
        return {}
    out = subprocess.run([nstat, "-az"], capture_output=True, text=True, check=False).stdout
    counters: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and any(w in parts[0] for w in _WATCH):
            counters[parts[0]] = int(parts[1])
    return counters


def io_stall_us() -> int:
    """Microseconds, since boot, during which every non-idle task waited on I/O (PSI)."""
    try:
        full = Path("/proc/pressure/io").read_text().splitlines()[1]
    except (OSError, IndexError):
        return 0
    return int(full.rsplit("total=", 1)[1])


def write(folder: Path, label: str, samples: Samples, before: Any, after: Any) -> None:
    """``before``/``after``: (tcp_counters(), thread_delays(pid), io_stall_us())."""
    moved = {
        k: after[0][k] - before[0].get(k, 0) for k in after[0] if after[0][k] != before[0].get(k, 0)
    }
    doc: dict[str, Any] = {
        "label": label,
        "wall_s": samples.wall_s,
        "tcp": moved,
        "threads": delays_moved(before[1], after[1]),
        "io_full_ms": (after[2] - before[2]) / 1000,
        "upstream_conns": [before[3], after[3]],
        "start_s": samples.start,
        "total_s": samples.total,
        "conn": samples.conn,
    }
    folder.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() else "_" for c in label)
    (folder / f"{name}.json").write_bytes(orjson.dumps(doc))


def thread_delays(pid: int | None) -> dict[str, list[float]]:
    """Per thread of ``pid``'s tree: [seconds blocked on block I/O (``delayacct_blkio_ticks``,
    0 unless ``kernel.task_delayacct`` is on), seconds runnable but waiting for a CPU
    (``schedstat``)], keyed ``tid name``."""
    if pid is None:
        return {}
    out: dict[str, list[float]] = {}
    for task in tree_tasks(pid):
        try:
            stat = (task / "stat").read_text()
            sched = (task / "schedstat").read_text().split()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        blkio = int(stat[stat.rindex(")") + 2 :].split()[39]) * _TICK_S
        out[f"{task.name} {name}"] = [blkio, int(sched[1]) / 1e9]
    return out


def delays_moved(
    before: dict[str, list[float]], after: dict[str, list[float]]
) -> dict[str, list[float]]:
    moved = {}
    for k, (blk, wait) in after.items():
        b = before.get(k, [0.0, 0.0])
        if blk - b[0] > 0 or wait - b[1] > 0.001:
            moved[k] = [round(blk - b[0], 3), round(wait - b[1], 4)]
    return moved
