"""report.json: what was trained on, with what, and how it went."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from adapters_local.training.batches import PackedData
from adapters_local.training.checkpoint import LoopState
from adapters_local.training.settings import TrainSettings


def peak_memory_mb(device: str) -> dict[str, float]:
    """GPU: peak allocated by torch. CPU: the process's peak resident set (includes the base)."""
    import resource

    import torch

    peak = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        peak["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return {k: round(v, 1) for k, v in peak.items()}


def build_report(
    *,
    settings: TrainSettings,
    fingerprint: dict[str, Any],
    state: LoopState,
    train: PackedData,
    test_exact_match: float | None,
    held_out: dict[str, Any],
    base_parameters: int,
    peak_memory: dict[str, float],
    stopped_early: bool,
    interrupted: bool,
    total_steps: int,
) -> dict[str, Any]:
    seconds = state.train_seconds
    return {
        "method": settings.method,
        "base": settings.base,
        "base_parameters": base_parameters,
        "recipe": settings.recipe,
        "data_sha256": fingerprint["data_sha256"],
        "eval_sha256": fingerprint["eval_sha256"],
        "hyper_parameters": settings.hyper_parameters(),
        "examples": train.examples,
        "packed_rows": len(train.rows),
        "padding_fraction": round(train.padding_fraction, 4),
        "steps_done": state.step,
        "steps_planned": total_steps,
        "stopped_early": stopped_early,
        "interrupted": interrupted,
        "train_loss_curve": [list(p) for p in state.train_curve],
        "eval_loss_curve": [list(p) for p in state.eval_curve],
        "best_eval_loss": state.best_eval,
        "held_out": held_out,
        # Scored on the test split, which played no part in choosing the checkpoint.
        "test_exact_match": test_exact_match,
        "tokens_trained": state.tokens,
        "tokens_per_second": round(state.tokens / seconds, 1) if seconds else None,
        "train_wall_seconds": round(seconds, 2),
        "peak_memory": peak_memory,
        "world_size": fingerprint["world_size"],
        "python": platform.python_version(),
    }


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
