"""The one seam between the training loop and a tuning method (``lora/``, ``bottleneck/``).

A method folder provides a class with these operations; ``attach`` picks it by name, so the loop
never branches on the method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from adapters_local.training.settings import TrainSettings


class Trainable(Protocol):
    model: Any  # what the loop calls forward on

    def parameters(self) -> list[Any]: ...

    def save(self, folder: Path) -> None: ...

    def scope(self, batch_size: int) -> Any:
        """A context in which forwards, and backward, go through the adapter."""
        ...


def attach(base_model: Any, settings: TrainSettings, resume_from: Path | None) -> Trainable:
    if settings.method == "lora":
        from adapters_local.lora.trainable import LoraTrainable

        return LoraTrainable(base_model, settings.lora, resume_from)
    from adapters_local.bottleneck.trainable import BottleneckTrainable

    options = settings.bottleneck
    return BottleneckTrainable(
        base_model, options.style, options.reduction_factor, settings.base, resume_from
    )
