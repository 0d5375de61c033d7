"""Everything a training run is told; saved into report.json and checked again on resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters_local.bottleneck.config import Style

Method = Literal["lora", "bottleneck"]


@dataclass(frozen=True)
class LoraOptions:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")


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
    eval_data: Path | None = None
    lora: LoraOptions = field(default_factory=LoraOptions)
    bottleneck: BottleneckOptions = field(default_factory=BottleneckOptions)
    epochs: float = 1.0
    steps: int | None = None  # overrides epochs
    lr: float = 2e-4
    warmup_steps: int = 10
    row_len: int = 512  # tokens per packed row
    rows_per_step: int = 8
    eval_every: int = 50
    patience: int | None = None  # evals without improvement before stopping early
    max_eval_items: int = 200
    log_every: int = 10
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    gradient_checkpointing: bool | None = None  # None: on for CUDA, off on the CPU

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.epochs <= 0:
            raise ValueError("epochs must be positive")
        if self.lr <= 0:
            raise ValueError("learning rate must be positive")
        if self.row_len < 8 or self.rows_per_step < 1:
            raise ValueError("row length must be at least 8 and rows per step at least 1")

    def hyper_parameters(self) -> dict[str, Any]:
        """The part of the settings a resumed run must share with the run it continues."""
        data = asdict(self)
        options = data.pop("lora") if self.method == "lora" else data.pop("bottleneck")
        data.pop("lora" if self.method == "bottleneck" else "bottleneck", None)
        for key in (
            "out", "device", "threads", "patience", "eval_every", "log_every",
            "gradient_checkpointing",
        ):  # fmt: skip
            data.pop(key)
        data["data"] = str(self.data)
        data["eval_data"] = str(self.eval_data) if self.eval_data else None
        data["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
        return data
