"""A fresh (or saved) bottleneck adapter hooked into a frozen base, as the training loop sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters_local.bottleneck.config import BottleneckConfig, Style
from adapters_local.bottleneck.modules import BottleneckAdapter, BottleneckHost, decoder_layers

TRAIN_NAME = "train"


class BottleneckTrainable:
    def __init__(
        self,
        base_model: Any,
        style: Style,
        reduction_factor: int,
        base_name: str,
        resume_from: Path | None,
    ) -> None:
        for parameter in base_model.parameters():
            parameter.requires_grad_(False)
        if resume_from is not None:
            adapter = BottleneckAdapter.load(resume_from)
        else:
            config = BottleneckConfig(
                style=style,
                hidden_size=int(base_model.config.hidden_size),
                num_layers=len(decoder_layers(base_model)),
                reduction_factor=reduction_factor,
                base_model=base_name,
            )
            adapter = BottleneckAdapter(config)
        self.model = base_model
        self._host = BottleneckHost(base_model)
        self._host.add(TRAIN_NAME, adapter.float(), keep_dtype=True)
        self.adapter = self._host.adapters[TRAIN_NAME]

    def parameters(self) -> list[Any]:
        return list(self.adapter.parameters())

    def save(self, folder: Path) -> None:
        self.adapter.save(folder)

    def scope(self, batch_size: int) -> Any:
        """Forwards (and the backward that may recompute them) must run inside this."""
        return self._host.activate(TRAIN_NAME, batch_size)
