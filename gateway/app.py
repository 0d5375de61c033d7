"""The FastAPI application: lifespan-owned clients and pipeline, routers, the exception handler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from gateway import handlers
from gateway.accounting.keys import Keyring
from gateway.accounting.service import Accounting
from gateway.accounting.stage import AccountingAdmit, AccountingSettle
from gateway.auth import build_key_store
from gateway.cache.service import open_cache
from gateway.config import GatewayConfig, load_config
from gateway.pipeline.admit import AdmitStage
from gateway.pipeline.attempt import AttemptStage
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.route import RouteStage
from gateway.pipeline.settle import Settle, SettleHook
from gateway.providers.base import BedrockOptions, Provider
from gateway.providers.local import Loader, LocalProvider, default_loader
from gateway.routes import accounting as accounting_routes
from gateway.routes import admin, bedrock, cache, health, openai
from gateway.settings import Settings, get_settings
from gateway.state import GatewayState
from gateway.targets import Kind
from gateway.variants import RegistryResolver

log = logging.getLogger("strata.app")


def create_app(
    settings: Settings | None = None,
    *,
    local_loader: Loader = default_loader,
    admit_stages: list[AdmitStage] | None = None,
    settle_hooks: list[SettleHook] | None = None,
) -> FastAPI:
    """``admit_stages`` may refuse a call before any upstream attempt; ``settle_hooks`` run once
    per call with its outcome (tests pass a recorder here). Both come after the built-in ones
    (accounting's: key scope, limits and budget; ledger and corrections)."""
    settings = settings or get_settings()
    config = load_config(settings)  # fail before serving, with the file/key/reason

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            providers = await _open_providers(stack, settings, config, local_loader)
            # Opened before the pipeline's settle, so it closes after the last settle drained.
            accounting = await Accounting.open(stack, settings, config.prices)
            route = RouteStage(config.routes(), RegistryResolver(settings.home / "variants.sqlite"))
            settle = Settle(
                [
                    AccountingSettle(accounting, config.bedrock.region or settings.aws_region),
                    *(settle_hooks or []),
                ]
            )
            stack.push_async_callback(settle.drain)
            aliases = frozenset(route.aliases)
            admit = AccountingAdmit(accounting, aliases.__contains__)
            pipeline = Pipeline(
                admit=[admit, *(admit_stages or [])],
                route=route,
                cache=open_cache(settings, accounting),
                attempt=AttemptStage(providers),
                settle=settle,
            )
            keys = build_key_store(settings.home, settings.dev_key, settings.auth_disabled)
            if not settings.auth_disabled:
                keys = Keyring(keys, accounting.keys)
            app.state.strata = GatewayState(settings, keys, pipeline, providers, accounting)
            log.info(
                "gateway ready to accept requests; aliases: %s",
                ", ".join(pipeline.route.aliases),
            )
            yield

    app = FastAPI(
        title="Strata gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    handlers.install(app)
    app.router.routes.extend(
        [
            *health.routes,
            *openai.routes,
            *bedrock.routes,
            *admin.routes,
            *accounting_routes.routes,
            *cache.routes,
        ]
    )
    return app


async def _open_providers(
    stack: AsyncExitStack,
    settings: Settings,
    config: GatewayConfig,
    local_loader: Loader,
) -> dict[Kind, Provider]:
    from gateway.providers.bedrock import BedrockProvider
    from gateway.providers.bedrock_direct import DirectBedrockProvider
    from gateway.providers.bedrock_regions import RegionalBedrock
    from gateway.wire.blobs import runtime_shapes

    runtime_shapes()  # read botocore's model now rather than on the first Bedrock-native call
    local = LocalProvider(config.local.bases, local_loader)
    stack.callback(local.close)
    bedrock_regions: set[str | None] = set()
    # Only models some alias names are loaded at start; others load on first use.
    for entry in config.aliases.values():
        for chain in entry.chains():
            for target in chain:
                if target.kind == "local":
                    local.preload(target.model)
                elif target.kind == "bedrock":
                    bedrock_regions.add(target.region)
    transport = DirectBedrockProvider if settings.bedrock_transport == "direct" else BedrockProvider
    options = BedrockOptions(
        region=config.bedrock.region or settings.aws_region,
        endpoint_url=config.bedrock.endpoint_url or settings.bedrock_endpoint_url,
        connect_timeout=settings.bedrock_connect_timeout_s,
        read_timeout=settings.bedrock_read_timeout_s,
        max_connections=settings.bedrock_max_connections,
    )
    bedrock = RegionalBedrock(stack, options, transport.open)
    # Regions the config names are opened now, so the first request does not pay for it; any
    # other region (a target named in a request) opens on first use.
    for region in sorted(bedrock_regions, key=str):
        await bedrock.client(region or options.region)
    providers: dict[Kind, Provider] = {"local": local, "bedrock": bedrock}
    return providers
