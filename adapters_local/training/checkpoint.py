"""Resumable checkpoints: the adapter in its own saved format plus the trainer's state.

Layout under the run's output folder::

    checkpoint/adapter/        the adapter as saved by its method (loadable on its own)
    checkpoint/state.pt        optimizer, scheduler, step, curves, RNG, best-eval parameters,
                               and a fingerprint of the data and hyper-parameters
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters_local.training.methods import Trainable


class ResumeError(ValueError):
    pass


@dataclass
class LoopState:
    step: int = 0
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    eval_curve: list[tuple[int, float]] = field(default_factory=list)
    best_eval: float | None = None
    evals_without_gain: int = 0
    tokens: int = 0
    train_seconds: float = 0.0


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoint"


def save_checkpoint(
    out: Path,
    trainable: Trainable,
    optimizer: Any,
    scheduler: Any,
    state: LoopState,
    fingerprint: dict[str, Any],
    best: list[Any],
) -> None:
    import torch

    target = checkpoint_dir(out)
    partial = out / "checkpoint.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    trainable.save(partial / "adapter")
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "loop": state.__dict__,
            "fingerprint": json.dumps(fingerprint, sort_keys=True),
            "rng": torch.get_rng_state(),
            "best": [t.detach().cpu() for t in best],
        },
        partial / "state.pt",
    )
    # Swap in the complete checkpoint only once written, so an interrupt mid-save leaves the
    # previous one intact: renamed aside first and removed after, so there is no checkpoint
    # at all only between two renames, not for the whole removal.
    old = out / "checkpoint.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint_state(out: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    import torch

    path = checkpoint_dir(out) / "state.pt"
    if not path.is_file():
        raise ResumeError(f"no checkpoint to resume in {checkpoint_dir(out)}")
    saved: dict[str, Any] = torch.load(str(path), weights_only=False)
    if saved["fingerprint"] != json.dumps(fingerprint, sort_keys=True):
        raise ResumeError("the checkpoint was made with other data or hyper-parameters")
    return saved


def restore(saved: dict[str, Any], optimizer: Any, scheduler: Any, best: list[Any]) -> LoopState:
    """Loads the saved state into ``optimizer``, ``scheduler`` and ``best`` (in place)."""
    import torch

    optimizer.load_state_dict(saved["optimizer"])
    with torch.no_grad():
        for kept, stored in zip(best, saved["best"], strict=True):
            kept.copy_(stored)
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    loop = dict(saved["loop"])
    loop["train_curve"] = [tuple(p) for p in loop["train_curve"]]
    loop["eval_curve"] = [tuple(p) for p in loop["eval_curve"]]
    return LoopState(**loop)
