"""Everything a training run is told; saved into report.json and checked again on resume.

``TrainRequest`` is what a user says (unset fields fall to the recipe for the base's size, see
``recipes``); ``TrainSettings`` is the concrete run the loop executes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters_local.bottleneck.config import Style
from adapters_local.lora.config import ALL_LINEAR as ALL_LINEAR
from adapters_local.lora.config import LoraOptions as LoraOptions

Method = Literal["lora", "bottleneck"]
HOLDOUT_FRACTION = 0.1  # carved from the training data when no --eval file is given


@dataclass(frozen=True)
class BottleneckOptions:
    style: Style = "pfeiffer"
    reduction_factor: int = 16


@dataclass(frozen=True)
class TrainSettings:
    method: Method
    base: str
    data: Path
    out: Path
    eval_data: Path | None = None  # picks the checkpoint (early stopping)
    test_data: Path | None = None  # scores it; default: half of the held-out data
    lora: LoraOptions = field(default_factory=LoraOptions)
    bottleneck: BottleneckOptions = field(default_factory=BottleneckOptions)
    epochs: float = 1.0
    steps: int | None = None  # overrides epochs
    lr: float = 2e-4
    warmup_steps: int = 10
    row_len: int = 512  # tokens per packed row
    rows_per_step: int = 8
    eval_every: int | None = None  # None: about a dozen evaluations over the run
    patience: int | None = None  # evals without improvement before stopping early
    max_eval_items: int = 200
    log_every: int = 10
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    gradient_checkpointing: bool | None = None  # None: on for CUDA, off on the CPU
    holdout: float = HOLDOUT_FRACTION
    recipe: str = "explicit"

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.epochs <= 0:
            raise ValueError("epochs must be positive")
        if self.lr <= 0:
            raise ValueError("learning rate must be positive")
        if self.row_len < 8 or self.rows_per_step < 1:
            raise ValueError("row length must be at least 8 and rows per step at least 1")
        if not 0 <= self.holdout < 1:
            raise ValueError("holdout must be a fraction in [0, 1)")

    def hyper_parameters(self) -> dict[str, Any]:
        """The part of the settings a resumed run must share with the run it continues."""
        data = asdict(self)
        options = data.pop("lora") if self.method == "lora" else data.pop("bottleneck")
        data.pop("lora" if self.method == "bottleneck" else "bottleneck", None)
        for key in (
            "out", "device", "threads", "patience", "eval_every", "log_every",
            "gradient_checkpointing", "recipe",
        ):  # fmt: skip
            data.pop(key)
        data["data"] = str(self.data)
        data["eval_data"] = str(self.eval_data) if self.eval_data else None
        data["test_data"] = str(self.test_data) if self.test_data else None
        data["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
        return data


@dataclass(frozen=True)
class TrainRequest:
    """A user's request: None (or an empty tuple) means "the recipe's value for this base"."""

    method: Method
    base: str
    data: Path
    out: Path
    eval_data: Path | None = None
    test_data: Path | None = None
    preset: str | None = None
    rank: int | None = None
    alpha: int | None = None  # default: twice the rank
    dropout: float | None = None
    targets: tuple[str, ...] = ()
    style: Style | None = None
    reduction_factor: int | None = None
    epochs: float | None = None
    steps: int | None = None
    lr: float | None = None
    row_len: int | None = None
    rows_per_step: int | None = None
    eval_every: int | None = None
    patience: int | None = None  # 0 turns early stopping off
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    gradient_checkpointing: bool | None = None
