"""A request's adapter name → the batch lanes that serve it.

A plain adapter (LoRA, bottleneck, weighted mix, stack) is one lane. A parallel composition
(``parallel:…`` or the ad-hoc ``a+b`` of a ``local:base@a+b`` target) is one lane per member,
decoded in the same forward pass as every other row. A routed composition picks one member per
request and is then an ordinary one-lane row: routing costs no extra pass, except with the
hidden-state classifier, which runs the base model once over the request before it joins the
batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters_local.compose.routers import Features, Router, build_router, choose
from adapters_local.compose.spec import BASE, CompositionError, Parallel, Routed, parallel_parts
from adapters_local.models.loading import ModelError

if TYPE_CHECKING:
    from adapters_local.serving.generation import GenerationRequest
    from adapters_local.serving.served_model import Route, ServedModel


@dataclass(frozen=True)
class Lanes:
    routes: tuple[Route, ...]
    weights: tuple[float, ...]  # one per lane, summing to 1
    member: str | None = None  # the member a routed composition chose


def request_text(request: GenerationRequest) -> str:
    """What routers read: the last user message."""
    return next((m.content for m in reversed(request.messages) if m.role == "user"), "")


class Compositions:
    """The parallel and routed compositions of one served model, with their trained routers."""

    def __init__(self, model: ServedModel) -> None:
        self._model = model
        self.specs: dict[str, Parallel | Routed] = {}
        self._routers: dict[str, Router] = {}

    def add(self, name: str, spec: Parallel | Routed) -> None:
        if name in self.specs or name in self._model.routes:
            raise ModelError(f"adapter name {name!r} is already in use")
        for member in spec.adapters:
            self._member(member)  # every member must be loaded first
        if spec.router is not None:
            try:
                self._routers[name] = build_router(spec.router, spec.adapters, self._hidden)
            except CompositionError as exc:
                raise ModelError(f"composition {name!r}: {exc}") from None
        self.specs[name] = spec

    def lanes(self, adapter: str | None, request: GenerationRequest) -> Lanes:
        from adapters_local.serving.served_model import Route

        if adapter is None:
            return Lanes((Route(),), (1.0,))
        spec = self.specs.get(adapter)
        if spec is None:
            try:
                parts = parallel_parts(adapter) if adapter not in self._model.routes else None
            except CompositionError as exc:
                raise ModelError(str(exc)) from None
            if parts is None:
                return Lanes((self._model.route(adapter),), (1.0,))
            spec = Parallel(parts, tuple(1.0 / len(parts) for _ in parts))
        router = self._routers.get(adapter)
        if isinstance(spec, Routed):
            assert router is not None
            member = spec.adapters[choose(router, request_text(request))]
            return Lanes((self._member(member),), (1.0,), member)
        weights = spec.weights
        if weights is None:  # a gate: this request's probabilities
            assert router is not None
            weights = tuple(router.probabilities(request_text(request)))
        return Lanes(tuple(self._member(m) for m in spec.adapters), weights)

    def _member(self, name: str) -> Route:
        from adapters_local.serving.served_model import Route

        if name == BASE and name not in self._model.routes:
            return Route()
        if name in self.specs:
            raise ModelError(f"composition member {name!r} is itself a composition")
        return self._model.route(name)

    def _hidden(self) -> Features:
        model = self._model

        def features(text: str) -> Any:
            return model.mean_hidden(text)

        return features
