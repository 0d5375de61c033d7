"""Latency of a short local request that arrives while a long one is decoding.

With static batching the short request waits for the long batch to finish; with continuous
batching it joins the running batch at the next decode step and finishes in about its own time.
Also: the short request's latency right after a 4 MB prompt (refused as too long) was submitted,
which stalled the engine while it tokenized on the engine thread. Prints the figures (median over
``--runs``); nothing is asserted.

    python -m bench.serving_latency [--runs 3] [--long 230] [--delay 0.3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import string
import threading
import time
from typing import Any

from adapters_local.serving.engine import load_engine
from adapters_local.serving.generation import (
    ChatMessage,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
)


def _timed(engine: Any, request: GenerationRequest) -> tuple[threading.Event, list[float]]:
    """Submit ``request``; the list receives the seconds from submit to its last event."""
    done = threading.Event()
    took: list[float] = []
    started = time.perf_counter()

    def emit(event: GenerationEvent) -> None:
        if isinstance(event, Finished | Failed):
            took.append(time.perf_counter() - started)
            done.set()

    engine.submit(request, emit)
    return done, took


def _copy(text: str, tokens: int) -> GenerationRequest:
    return GenerationRequest((ChatMessage("user", f"Copy: {text}"),), max_new_tokens=tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long", type=int, default=230, help="tokens the long request makes")
    parser.add_argument("--short", type=int, default=5, help="tokens the short request makes")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds between the two")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    kwargs: dict[str, Any] = {} if args.threads is None else {"threads": args.threads}
    engine = load_engine("builtin", device="cpu", **kwargs)
    letters = (string.ascii_lowercase * 20)[: args.long]
    long_request = _copy(letters, args.long)
    short_request = _copy(letters[: args.short], args.short)
    alone, behind, long_times, after_huge = [], [], [], []
    huge_request = _copy("x" * 4_000_000, 5)
    try:
        _timed(engine, short_request)[0].wait()  # warm-up
        for _ in range(args.runs):
            done, took = _timed(engine, short_request)
            done.wait()
            alone.append(took[0])
            long_done, long_took = _timed(engine, long_request)
            time.sleep(args.delay)
            done, took = _timed(engine, short_request)
            done.wait()
            long_done.wait()
            behind.append(took[0])
            long_times.append(long_took[0])
            huge_done, _ = _timed(engine, huge_request)
            done, took = _timed(engine, short_request)
            done.wait()
            huge_done.wait()
            after_huge.append(took[0])
    finally:
        engine.close()
    print(f"short request ({args.short} tokens) alone:          {statistics.median(alone):.2f} s")
    print(
        f"short request {args.delay:.1f} s after a {args.long}-token one: "
        f"{statistics.median(behind):.2f} s  (runs: {', '.join(f'{t:.2f}' for t in behind)})"
    )
    print(f"short request right after a 4 MB prompt:    {statistics.median(after_huge):.2f} s")
    print(
        f"long request ({args.long} tokens):                  {statistics.median(long_times):.2f} s"
    )


if __name__ == "__main__":
    main()
