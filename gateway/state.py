"""What the lifespan opens and the routes use: one object on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from gateway.auth import KeyStore
from gateway.pipeline.pipeline import Pipeline
from gateway.providers.base import Provider
from gateway.settings import Settings
from gateway.targets import Kind


@dataclass
class GatewayState:
    settings: Settings
    keys: KeyStore
    pipeline: Pipeline
    providers: dict[Kind, Provider] = field(default_factory=dict)

    def ready(self) -> dict[str, bool]:
        return {kind: provider.ready() for kind, provider in self.providers.items()}


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.strata
    return state
