"""What the engine tests share: a collector of one request's events, and request shorthands."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters_local.serving.generation import (
    ChatMessage,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
)

WAIT_S = 300  # a ceiling for a hung engine, not a timing assertion


@dataclass
class Collector:
    events: list[GenerationEvent] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def __call__(self, event: GenerationEvent) -> None:
        self.events.append(event)
        if isinstance(event, Finished | Failed):
            self.done.set()

    def wait(self) -> Collector:
        assert self.done.wait(WAIT_S), "engine never finished the request"
        return self

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def end(self) -> GenerationEvent:
        return self.events[-1]


def request(prompt: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest((ChatMessage("user", prompt),), **kwargs)


def run_all(engine: Any, requests: list[GenerationRequest]) -> list[Collector]:
    collectors = [Collector() for _ in requests]
    for generation, collector in zip(requests, collectors, strict=True):
        engine.submit(generation, collector)
    return [c.wait() for c in collectors]


def random_bottleneck(folder: Path, *, seed: int, fill: float | None = None) -> Path:
    """An untrained bottleneck adapter for the built-in model whose output differs from the base
    (large random up-projections), or whose weights are all ``fill`` (e.g. NaN)."""
    import json

    import torch

    from adapters_local.bottleneck.config import BottleneckConfig
    from adapters_local.bottleneck.modules import BottleneckAdapter
    from adapters_local.models.loading import BUILTIN_DIR

    config = json.loads((BUILTIN_DIR / "config.json").read_text())
    torch.manual_seed(seed)
    adapter = BottleneckAdapter(
        BottleneckConfig("houlsby", config["hidden_size"], config["num_hidden_layers"], 4)
    )
    with torch.no_grad():
        for name, parameter in adapter.named_parameters():
            if fill is not None:
                parameter.fill_(fill)
            elif name.endswith("up.weight"):
                parameter.normal_(std=3.0)
    adapter.save(folder)
    return folder


def random_lora(folder: Path, *, seed: int) -> Path:
    """An untrained LoRA for the built-in model with random (non-zero) B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model

    from adapters_local.models.loading import BUILTIN_DIR, load_model

    torch.manual_seed(seed)
    model = load_model(BUILTIN_DIR, "cpu")
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"])
    config.init_lora_weights = False  # random A and B: the adapter changes the answers
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(folder))
    return folder
