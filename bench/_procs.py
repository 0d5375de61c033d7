"""The processes under test (the wire fake, the gateway) and what /proc says about them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._load import LOOPBACK, wait_ready

REPO = Path(__file__).resolve().parent.parent
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (clock-tick resolution)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Field 2 (comm) may hold spaces; everything after its closing parenthesis is fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a proxy may run its workers as children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # exited meanwhile
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for child in descendants(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue
    return total


def tree_tasks(pid: int) -> list[Path]:
    """The ``/proc/<pid>/task/<tid>`` folder of every thread of ``pid`` and its descendants
    (a process that ends while we look is skipped)."""
    found: list[Path] = []
    for proc in descendants(pid):
        try:
            found += Path(f"/proc/{proc}/task").iterdir()
        except OSError:
            continue
    return found


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Proc:
    """A child process in its own process group, stopped with SIGINT then SIGKILL."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def last_lines(self, n: int = 5) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def _spawn(argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> Proc:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(popen, log)


def start_fake(
    workdir: Path,
    *,
    latency_ms: float,
    chunks: int,
    python: str = sys.executable,
    extra: Sequence[str] = (),
) -> tuple[Proc, int]:
    """Start ``tests.fakes.bedrock_wire`` and return it with the port it printed; ``extra``
    are more of its options (fault injection)."""
    argv = [python, "-m", "tests.fakes.bedrock_wire", "--port", "0"]
    argv += ["--latency-ms", str(latency_ms), "--chunks", str(chunks), *extra]
    log = workdir / "fake.log"
    proc = _spawn(argv, {**os.environ, "PYTHONPATH": str(REPO)}, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("READY "):
                return proc, int(line.split()[1])
        if not proc.alive():
            break
        time.sleep(0.02)
    proc.stop()
    raise RuntimeError(f"the wire fake did not start:\n{proc.last_lines()}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def write_gateway_config(workdir: Path, fake_port: int, model_id: str) -> Path:
    path = workdir / "strata.yaml"
    path.write_text(
        "aliases:\n"
        f"  default: bedrock:{model_id}\n"
        "bedrock:\n"
        "  region: us-east-1\n"
        f"  endpoint_url: http://{LOOPBACK}:{fake_port}\n",
        encoding="utf-8",
    )
    return path


def gateway_env(home: Path, key: str, transport: str = "direct") -> dict[str, str]:
    """The environment ``strata serve`` gets: isolated home, a dev key, the Bedrock transport,
    dummy AWS credentials (it signs its upstream calls; the fake does not check them) and no AWS
    config files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATA_"))}
    empty = home / "aws-empty"
    empty.write_text("")
    env.update(
        STRATA_HOME=str(home),
        STRATA_DEV_KEY=key,
        STRATA_BEDROCK_TRANSPORT=transport,
        AWS_ACCESS_KEY_ID="AKIDBENCHEXAMPLE",
        AWS_SECRET_ACCESS_KEY="bench-secret-example",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        PYTHONPATH=str(REPO),
    )
    return env


def strata_argv(launch: str, config: Path, port: int) -> list[str]:
    """``strata serve`` as installed (``launch="strata"``), or the same ``serve`` command run
    without the other packages' sub-apps mounted (``launch="direct"``)."""
    args = ["serve", "--config", str(config), "--host", LOOPBACK, "--port", str(port)]
    if launch == "strata":
        script = Path(sys.executable).with_name("strata")
        found = str(script) if script.exists() else shutil.which("strata")
        if found is None:
            raise RuntimeError("the strata console script is not installed")
        return [found, *args]
    code = "import typer; from gateway.cli import serve; typer.run(serve)"
    return [sys.executable, "-c", code, *args[1:]]


def start_gateway(argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path) -> Proc:
    return _spawn(argv, env, log, cwd)


def has_library(pid: int, name: str) -> bool:
    """Whether a shared library whose path contains ``name`` is mapped (``libtorch``: torch
    was imported)."""
    return name in Path(f"/proc/{pid}/maps").read_text()


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="strata-bench-"))


async def start_ready(
    name: str, workdir: Path, config: Path, key: str, extra: dict[str, str]
) -> tuple[Proc, int]:
    """A `strata serve` on a free port with its own home, once `/readyz` says it is ready."""
    home = workdir / f"{name}-home"
    home.mkdir()
    env = {**gateway_env(home, key), **extra}
    port = free_port()
    proc = start_gateway(strata_argv("direct", config, port), env, workdir / f"{name}.log", workdir)
    if not await wait_ready(port, "/readyz", time.monotonic() + 90):
        proc.stop()
        raise RuntimeError(f"{name} gateway did not start:\n{proc.last_lines(8)}")
    return proc, port
