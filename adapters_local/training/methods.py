"""Attach a fresh (or saved) trainable adapter to a base model, and save it again.

One class per method with the same three operations keeps the training loop method-agnostic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from adapters_local.training.settings import TrainSettings


class Trainable(Protocol):
    model: Any  # what the loop calls forward on

    def parameters(self) -> list[Any]: ...

    def save(self, folder: Path) -> None: ...

    def scope(self, batch_size: int) -> Any:
        """A context in which forwards go through the adapter."""
        ...


class LoraTrainable:
    def __init__(self, base_model: Any, settings: TrainSettings, resume_from: Path | None) -> None:
        from peft import LoraConfig, PeftModel, get_peft_model

        if resume_from is not None:
            self.model = PeftModel.from_pretrained(base_model, str(resume_from), is_trainable=True)
        else:
            options = settings.lora
            config = LoraConfig(
                r=options.rank,
                lora_alpha=options.alpha,
                lora_dropout=options.dropout,
                target_modules=list(options.targets),
                task_type="CAUSAL_LM",
            )
            self.model = get_peft_model(base_model, config)

    def parameters(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder))

    @contextmanager
    def scope(self, batch_size: int) -> Iterator[None]:
        yield


class BottleneckTrainable:
    def __init__(self, base_model: Any, settings: TrainSettings, resume_from: Path | None) -> None:
        from adapters_local.bottleneck.config import BottleneckConfig
        from adapters_local.bottleneck.modules import (
            BottleneckAdapter,
            BottleneckHost,
            decoder_layers,
        )

        for parameter in base_model.parameters():
            parameter.requires_grad_(False)
        if resume_from is not None:
            adapter = BottleneckAdapter.load(resume_from)
        else:
            config = BottleneckConfig(
                style=settings.bottleneck.style,
                hidden_size=int(base_model.config.hidden_size),
                num_layers=len(decoder_layers(base_model)),
                reduction_factor=settings.bottleneck.reduction_factor,
                base_model=settings.base,
            )
            adapter = BottleneckAdapter(config)
        self.model = base_model
        self._host = BottleneckHost(base_model)
        self._host.add("train", adapter.float(), keep_dtype=True)
        self.adapter = self._host.adapters["train"]

    def parameters(self) -> list[Any]:
        return list(self.adapter.parameters())

    def save(self, folder: Path) -> None:
        self.adapter.save(folder)

    def scope(self, batch_size: int) -> Any:
        return self._host.activate("train", batch_size)


def attach(base_model: Any, settings: TrainSettings, resume_from: Path | None) -> Trainable:
    if settings.method == "lora":
        return LoraTrainable(base_model, settings, resume_from)
    return BottleneckTrainable(base_model, settings, resume_from)
