"""Adapter compositions written as strings, so a name → value mapping can declare them.

``weighted:a=0.7,b=0.3`` is a weighted LoRA mix; ``stack:lora+bottleneck`` puts a bottleneck
adapter on top of a LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters_local.serving.served_model import ServedModel


class CompositionError(ValueError):
    pass


@dataclass(frozen=True)
class WeightedLora:
    weights: tuple[tuple[str, float], ...]

    def apply(self, model: ServedModel, name: str) -> None:
        model.add_weighted_lora(name, dict(self.weights))


@dataclass(frozen=True)
class Stack:
    lora: str
    bottleneck: str

    def apply(self, model: ServedModel, name: str) -> None:
        model.add_stack(name, self.lora, self.bottleneck)


def parse_composition(value: str) -> WeightedLora | Stack | None:
    """None when ``value`` is a plain folder path."""
    kind, sep, body = value.partition(":")
    if not sep or kind not in ("weighted", "stack"):
        return None
    if kind == "stack":
        lora, plus, bottleneck = body.partition("+")
        if not plus or not lora.strip() or not bottleneck.strip():
            raise CompositionError(f"expected stack:LORA+BOTTLENECK, got {value!r}")
        return Stack(lora.strip(), bottleneck.strip())
    weights: list[tuple[str, float]] = []
    for part in body.split(","):
        adapter, eq, weight = part.partition("=")
        try:
            weights.append((adapter.strip(), float(weight)))
        except ValueError:
            raise CompositionError(f"expected weighted:NAME=WEIGHT,..., got {value!r}") from None
        if not eq or not adapter.strip():
            raise CompositionError(f"expected weighted:NAME=WEIGHT,..., got {value!r}")
    return WeightedLora(tuple(weights))
