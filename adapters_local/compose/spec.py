"""Adapter compositions written as strings, so a name → value mapping can declare them.

    weighted:a=0.7,b=0.3       a new LoRA whose update is the weighted sum of a's and b's
    stack:lora+bottleneck      a bottleneck adapter on top of a LoRA, on the same rows
    parallel:a+b               each adapter runs on its own lane; their logits are averaged
    parallel:a=0.7,b=0.3       ... with fixed weights (scaled to sum to 1)
    parallel:{json}            ... gated per request: {"adapters": [...], "router": {...}}
    route:{json}               one adapter per request, chosen by a router over the request

``base`` names the bare base model inside parallel and routed compositions. Routers are
described in ``compose.routers``. Nothing here imports torch: the gateway parses these to check
its config before any model loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BASE = "base"  # the bare base model, as a member of a parallel or routed composition


class CompositionError(ValueError):
    pass


@dataclass(frozen=True)
class WeightedLora:
    weights: tuple[tuple[str, float], ...]

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.weights)


@dataclass(frozen=True)
class Stack:
    lora: str
    bottleneck: str

    @property
    def members(self) -> tuple[str, ...]:
        return (self.lora, self.bottleneck)


@dataclass(frozen=True)
class Parallel:
    """Every adapter sees the request; the next token is chosen from the weighted mean of their
    logits. ``router`` set: the weights are its probabilities for each request (a gate)."""

    adapters: tuple[str, ...]
    weights: tuple[float, ...] | None = None  # None with a router: the gate decides
    router: dict[str, Any] | None = None

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(a for a in self.adapters if a != BASE)


@dataclass(frozen=True)
class Routed:
    """One adapter per request, picked by ``router`` (keywords or a classifier)."""

    adapters: tuple[str, ...]
    router: dict[str, Any]

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(a for a in self.adapters if a != BASE)


Composition = WeightedLora | Stack | Parallel | Routed
KINDS = ("weighted", "stack", "parallel", "route")


def parse_composition(value: str) -> Composition | None:
    """None when ``value`` is a plain folder path."""
    kind, sep, body = value.partition(":")
    if not sep or kind not in KINDS:
        return None
    if kind == "stack":
        lora, plus, bottleneck = body.partition("+")
        if not plus or not lora.strip() or not bottleneck.strip():
            raise CompositionError(f"expected stack:LORA+BOTTLENECK, got {value!r}")
        return Stack(lora.strip(), bottleneck.strip())
    if kind == "weighted":
        return WeightedLora(tuple(_weights(body, value, "weighted:NAME=WEIGHT,...")))
    if body.lstrip().startswith("{"):
        return _from_mapping(kind, _json(body, value))
    if kind == "route":
        raise CompositionError(
            f'expected route:{{"adapters": [...], "router": ...}}, got {value!r}'
        )
    if "=" in body:
        pairs = _weights(body, value, "parallel:NAME=WEIGHT,... or parallel:A+B")
        return _parallel([n for n, _ in pairs], [w for _, w in pairs], None)
    return _parallel([p.strip() for p in body.split("+")], None, None)


def to_value(kind: str, adapters: list[str], weights: Any = None, router: Any = None) -> str:
    """The string form of a composition declared as a mapping (``strata.yaml``'s
    ``compositions``); parsing it back checks it."""
    if kind not in ("parallel", "route"):
        raise CompositionError(f"mode must be parallel or route, got {kind!r}")
    body: dict[str, Any] = {"adapters": list(adapters)}
    if weights is not None:
        body["weights"] = weights
    if router is not None:
        body["router"] = router
    value = f"{kind}:{json.dumps(body, separators=(',', ':'), sort_keys=True)}"
    parse_composition(value)
    return value


def parallel_parts(adapter: str) -> tuple[str, ...] | None:
    """``a+b`` in a target (``local:base@a+b``): an ad-hoc equal-weight parallel composition."""
    if "+" not in adapter:
        return None
    parts = tuple(p.strip() for p in adapter.split("+"))
    if len(parts) < 2 or not all(parts):
        raise CompositionError(f"expected ADAPTER+ADAPTER[+...], got {adapter!r}")
    return parts


def _json(body: str, value: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CompositionError(f"{value[:60]!r}...: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise CompositionError("a composition body must be a JSON object")
    return data


def _from_mapping(kind: str, data: dict[str, Any]) -> Composition:
    unknown = set(data) - {"adapters", "weights", "router"}
    if unknown:
        raise CompositionError(f"unknown composition keys: {', '.join(sorted(unknown))}")
    adapters = data.get("adapters")
    if not isinstance(adapters, list) or not all(isinstance(a, str) and a for a in adapters):
        raise CompositionError("adapters must be a list of adapter names")
    weights, router = data.get("weights"), data.get("router")
    if router is not None and not isinstance(router, dict):
        raise CompositionError("router must be a mapping")
    if kind == "route":
        if router is None:
            raise CompositionError("a routed composition needs a router")
        if weights is not None:
            raise CompositionError("a routed composition takes a router, not weights")
        _distinct(adapters)
        return Routed(tuple(adapters), router)
    if isinstance(weights, dict):
        if set(weights) != set(adapters):
            raise CompositionError("weights must name every adapter of the composition")
        weights = [weights[a] for a in adapters]
    return _parallel(adapters, weights, router)


def _parallel(adapters: list[str], weights: Any, router: dict[str, Any] | None) -> Parallel:
    if len(adapters) < 2 or not all(adapters):
        raise CompositionError("a parallel composition needs at least two adapters")
    _distinct(adapters)
    if weights is not None and router is not None:
        raise CompositionError("a parallel composition takes weights or a router (gate), not both")
    if weights is None:
        return Parallel(tuple(adapters), None if router else _even(len(adapters)), router)
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise CompositionError("weights must be numbers") from None
    if len(values) != len(adapters) or any(w < 0 for w in values) or sum(values) <= 0:
        raise CompositionError("one non-negative weight per adapter, not all zero")
    total = sum(values)
    return Parallel(tuple(adapters), tuple(w / total for w in values))


def _even(count: int) -> tuple[float, ...]:
    return tuple(1.0 / count for _ in range(count))


def _distinct(adapters: list[str]) -> None:
    if len(set(adapters)) != len(adapters):
        raise CompositionError("an adapter appears twice in one composition")


def _weights(body: str, value: str, expected: str) -> list[tuple[str, float]]:
    weights: list[tuple[str, float]] = []
    for part in body.split(","):
        adapter, eq, weight = part.partition("=")
        try:
            weights.append((adapter.strip(), float(weight)))
        except ValueError:
            raise CompositionError(f"expected {expected}, got {value!r}") from None
        if not eq or not adapter.strip():
            raise CompositionError(f"expected {expected}, got {value!r}")
    return weights
