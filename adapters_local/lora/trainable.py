"""A fresh (or saved) peft LoRA on a base model, as the training loop sees it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters_local.lora.config import LoraOptions


class LoraTrainable:
    def __init__(self, base_model: Any, options: LoraOptions, resume_from: Path | None) -> None:
        from peft import PeftModel, get_peft_model

        if resume_from is not None:
            self.model = PeftModel.from_pretrained(base_model, str(resume_from), is_trainable=True)
        else:
            self.model = get_peft_model(base_model, options.peft_config())

    def parameters(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder))

    @contextmanager
    def scope(self, batch_size: int) -> Iterator[None]:
        """peft's layers are always on: nothing to route."""
        yield
