"""Independent references for composition tests: each adapter on its own copy of the base, run
without a KV cache, batch or composition code (plain peft, or our bottleneck hooks alone)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters_local.bottleneck.config import is_bottleneck_folder


class SoloModel:
    """One adapter (or none) on a fresh base; ``logits(ids)`` scores the next token."""

    def __init__(self, folder: Path | None) -> None:
        from adapters_local.models.loading import BUILTIN_DIR, load_model

        model: Any = load_model(BUILTIN_DIR, "cpu")
        self._scope: Any = None
        if folder is not None and is_bottleneck_folder(folder):
            from adapters_local.bottleneck.modules import BottleneckAdapter, BottleneckHost

            self._host = BottleneckHost(model)
            self._host.add("solo", BottleneckAdapter.load(folder))
            self._scope = self._host
        elif folder is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(folder))
        self._model = model.eval()

    def logits(self, ids: Sequence[int]) -> Any:
        import contextlib

        import torch

        scope: Any = self._scope.activate("solo", 1) if self._scope else contextlib.nullcontext()
        with torch.inference_mode(), scope:
            out = self._model(input_ids=torch.tensor([list(ids)]), use_cache=False)
        return out.logits[0, -1].float()


def mixed_logits(models: Sequence[SoloModel], weights: Sequence[float], ids: Sequence[int]) -> Any:
    return sum(w * m.logits(ids) for m, w in zip(models, weights, strict=True))


def greedy(
    models: Sequence[SoloModel], weights: Sequence[float], prompt: list[int], steps: int, eos: int
) -> list[int]:
    """Greedy decoding from the weighted mean of the models' logits, recomputed from scratch."""
    ids, out = list(prompt), []
    for _ in range(steps):
        token = int(mixed_logits(models, weights, ids).argmax())
        if token == eos:
            break
        out.append(token)
        ids.append(token)
    return out
