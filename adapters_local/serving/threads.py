"""How many CPU threads torch decodes with.

torch's default (one per core) is the worst choice for a small model on a small machine: a decode
step is a few tiny matmuls, and waking threads for them costs more than it saves (on a 2-core
machine the built-in model decoded 5-15x slower with 2 threads than with 1). So the engine times
a few decode steps with each candidate count at load and keeps the fastest. A large model's
matmuls do scale with threads, and timing it would take long, so it gets the cores but one (left
to the gateway's event loop). ``STRATA_LOCAL_THREADS`` (or ``threads=``) overrides both.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from typing import Any

log = logging.getLogger("strata.local")

MEASURE_BELOW_PARAMS = 300_000_000  # above this, pick by size instead of timing
STEPS_PER_TRY = 4
ROUNDS = 3


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def candidates(cores: int) -> list[int]:
    counts = {1, cores}
    power = 2
    while power < cores:
        counts.add(power)
        power *= 2
    return sorted(counts)


def choose_threads(model: Any, requested: int | None) -> int:
    """Set torch's thread count for the calling thread (the engine's worker); returns it."""
    import torch

    if requested is not None:
        torch.set_num_threads(max(1, requested))
        return max(1, requested)
    cores = available_cores()
    size = sum(p.numel() for p in model.model.parameters())
    if size >= MEASURE_BELOW_PARAMS or cores == 1:
        chosen = max(1, cores - 1)
    else:
        chosen = _fastest(model, candidates(cores))
    torch.set_num_threads(chosen)
    log.info(
        "local model decodes with %d CPU thread(s) (%d cores, %d parameters)", chosen, cores, size
    )
    return chosen


def _fastest(model: Any, counts: list[int]) -> int:
    """The count whose median decode-step time is lowest, rounds interleaved against drift."""
    import torch
    from transformers import DynamicCache

    from adapters_local.serving.served_model import Route

    device = model.device
    prompt = torch.full((1, 16), int(model.tokenizer.pad_token_id), device=device)
    ones = torch.ones_like(prompt)
    times: dict[int, list[float]] = {n: [] for n in counts}
    with torch.inference_mode():
        for _ in range(ROUNDS):
            for count in counts:
                torch.set_num_threads(count)
                cache = DynamicCache()
                positions = torch.arange(16, device=device).unsqueeze(0)
                model.forward(prompt, ones, positions, cache, [Route()])
                mask = ones
                started = time.perf_counter()
                for step in range(STEPS_PER_TRY):
                    mask = torch.cat([mask, mask.new_ones((1, 1))], dim=-1)
                    position = torch.tensor([[16 + step]], device=device)
                    model.forward(prompt[:, :1], mask, position, cache, [Route()])
                times[count].append(time.perf_counter() - started)
    return min(counts, key=lambda n: (statistics.median(times[n]), n))
