"""What the lifespan opens and the routes use: one object on ``app.state``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request

from gateway.accounting.service import Accounting
from gateway.auth import KeyStore
from gateway.experiments.graders.service import GraderService
from gateway.experiments.service import Experiments
from gateway.observability.service import Observability
from gateway.pipeline.pipeline import Pipeline
from gateway.providers.base import Provider
from gateway.settings import Settings
from gateway.targets import Kind
from gateway.variants import RegistryResolver


@dataclass
class GatewayState:
    settings: Settings
    keys: KeyStore
    pipeline: Pipeline
    providers: dict[Kind, Provider] = field(default_factory=dict)
    auth_disabled: bool = False
    variants: RegistryResolver | None = None
    # None until the credential chain has been looked at (it may query instance metadata).
    aws_credentials: bool | None = None
    accounting: Accounting | None = None
    observability: Observability | None = None
    graders: GraderService | None = None
    experiments: Experiments | None = None

    def ready(self) -> dict[str, bool]:
        return {kind: provider.ready() for kind, provider in self.providers.items()}

    async def check_aws_credentials(self) -> None:
        self.aws_credentials = await asyncio.to_thread(_has_aws_credentials)


def _has_aws_credentials() -> bool:
    import os

    import botocore.session

    if os.environ.get("AWS_BEARER_TOKEN_BEDROCK"):
        return True
    return botocore.session.get_session().get_credentials() is not None


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.strata
    return state
