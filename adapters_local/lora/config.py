"""What a LoRA is made of, and the peft config that builds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL_LINEAR = ("all-linear",)  # peft: every linear layer of the decoder (attention and MLP)


@dataclass(frozen=True)
class LoraOptions:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise ValueError("LoRA rank and alpha must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("LoRA dropout must be in [0, 1)")
        if not self.targets:
            raise ValueError("LoRA targets name no modules")

    def peft_config(self) -> Any:
        from peft import LoraConfig

        # peft takes the "all-linear" shorthand only as a bare string, not inside a list.
        targets: Any = ALL_LINEAR[0] if self.targets == ALL_LINEAR else list(self.targets)
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
