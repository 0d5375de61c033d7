"""Where a process's CPU went, from a py-spy ``--format raw`` profile (collapsed stacks).

    py-spy record -p <gateway pid> -r 250 -f raw -o gw.raw -d 20 --nonblocking
    python -m bench._profile gw.raw [--per-request-ms 1.3]

Prints self time by package (the innermost Python frame's top-level module: time in a C
extension counts for the Python function that called it) and inclusive time for the request
path's main steps. With ``--per-request-ms`` (the gateway CPU per request the benchmark
measured) shares are also given in milliseconds per request.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")

# Inclusive steps: a stack counts for a step when any of its frames, written
# "function (file)", matches the pattern.
STEPS: dict[str, str] = {
    "uvicorn HTTP parsing + ASGI cycle (excl. app)": r"uvicorn/protocols/http/",
    "starlette/fastapi routing + middleware": r"(starlette|fastapi)/",
    "our route handlers (gateway/routes)": r"gateway/routes/",
    "auth (gateway/auth.py)": r"gateway/auth\.py",
    "wire parse (gateway/wire)": r"gateway/wire/",
    "pipeline (gateway/pipeline/)": r"gateway/pipeline/",
    "bedrock provider (gateway/providers/bedrock.py)": r"gateway/providers/bedrock\.py",
    "aiobotocore/botocore client call": r"(aiobotocore|botocore)/",
    "  botocore request signing (SigV4)": r"botocore/(auth|signers)\.py",
    "  botocore param validation + serialisation": r"botocore/(validate|serialize)\.py",
    "  botocore response parsing": r"botocore/parsers\.py",
    "  botocore hooks/events": r"botocore/hooks\.py",
    "  botocore endpoint ruleset resolution": r"botocore/(regions|endpoint_provider)\.py",
    "  aiohttp (upstream HTTP client)": r"aiohttp/",
    "pydantic (validate/dump)": r"pydantic/",
}


def parse_raw(lines: Iterable[str]) -> list[tuple[list[tuple[str, str]], int]]:
    """``frame;frame;... count`` lines -> (frames as (function, file), sample count)."""
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        path, _, count = line.rpartition(" ")
        frames = []
        for frame in path.split(";"):
            match = _FRAME.match(frame)
            frames.append((match["func"], match["file"]) if match else (frame, ""))
        stacks.append((frames, int(count)))
    return stacks


def package(file: str) -> str:
    """``botocore/auth.py`` -> ``botocore``; ``gateway/wire/x.py`` -> ``gateway/wire``."""
    parts = file.split("/")
    if parts[0] == "gateway" and len(parts) > 2:
        return "/".join(parts[:2])
    if len(parts) == 1:
        return f"stdlib:{parts[0]}" if parts[0].endswith(".py") else parts[0] or "(native)"
    return parts[0]


def self_by_package(stacks: Sequence[tuple[list[tuple[str, str]], int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for frames, count in stacks:
        out[package(frames[-1][1])] += count
    return out


def self_by_function(stacks: Sequence[tuple[list[tuple[str, str]], int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for frames, count in stacks:
        func, file = frames[-1]
        out[f"{func} ({file})"] += count
    return out


def inclusive(stacks: Sequence[tuple[list[tuple[str, str]], int]], pattern: str) -> int:
    regex = re.compile(pattern)
    # Matched against "function (file)", so a pattern may name either.
    return sum(c for frames, c in stacks if any(regex.search(f"{fn} ({f})") for fn, f in frames))


def report(
    stacks: Sequence[tuple[list[tuple[str, str]], int]],
    per_request_ms: float | None,
    top: int,
    extra: Sequence[str] = (),
) -> str:
    total = sum(c for _, c in stacks) or 1

    def share(n: int) -> str:
        pct = f"{100 * n / total:5.1f}%"
        return pct + (f"  {per_request_ms * n / total:6.3f} ms/req" if per_request_ms else "")

    lines = [f"{total} samples", "", "self time by package:"]
    lines += [f"  {share(n)}  {name}" for name, n in self_by_package(stacks).most_common(top)]
    lines += ["", "inclusive time by step:"]
    steps = {**STEPS, **{f"matches {pat!r}": pat for pat in extra}}
    lines += [f"  {share(inclusive(stacks, pat))}  {name}" for name, pat in steps.items()]
    lines += ["", "self time by function:"]
    lines += [f"  {share(n)}  {name}" for name, n in self_by_function(stacks).most_common(top)]
    return "\n".join(lines)


class PySpy:
    """``py-spy record`` attached to a running process until ``stop()``; needs py-spy on PATH
    (or next to this Python) and ptrace permission. ``--nonblocking`` never pauses the target,
    so its CPU figures stay close to an unprofiled run."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        found = str(exe) if exe.exists() else shutil.which("py-spy")
        if found is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.out = out
        argv = [
            found,
            "record",
            "-p",
            str(pid),
            "-r",
            str(rate),
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def stop(self) -> str:
        """Stop sampling and return the report, or why there is none."""
        self._proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = self._proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        if not self.out.exists():
            return f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}"
        return ""


def summarise_file(path: Path, per_request_ms: float | None, top: int = 25) -> str:
    with path.open(encoding="utf-8") as f:
        return report(parse_raw(f), per_request_ms, top)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._profile", description=__doc__.split("\n")[0])
    p.add_argument("raw", type=Path, help="py-spy record --format raw output")
    p.add_argument("--per-request-ms", type=float, default=None)
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--match",
        action="append",
        default=[],
        help="also show inclusive time of frames matching this regex (repeatable)",
    )
    args = p.parse_args(argv)
    with args.raw.open(encoding="utf-8") as f:
        stacks = parse_raw(f)
    print(report(stacks, args.per_request_ms, args.top, args.match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
