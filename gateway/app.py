"""The FastAPI application: lifespan-owned clients and pipeline, routers, the exception handler."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from gateway import handlers
from gateway.accounting.keys import Keyring
from gateway.accounting.service import Accounting
from gateway.accounting.stage import AccountingAdmit, AccountingSettle
from gateway.auth import OpenAccess, build_key_store
from gateway.cache.service import invoke_model, open_cache
from gateway.config import GatewayConfig, load_config
from gateway.dashboard import routes as dashboard
from gateway.experiments.bodies import BodiesAdmit, BodiesSettle, BodyWriter
from gateway.experiments.graders.service import GraderCollector
from gateway.experiments.graders.wiring import open_graders
from gateway.experiments.setup import open_experiments
from gateway.heap import freeze_startup_heap, thaw_startup_heap
from gateway.observability.service import Observability
from gateway.observability.tracing import Tracing, bedrock_address, from_environment
from gateway.pipeline.admit import AdmitStage
from gateway.pipeline.attempt import AttemptStage
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.route import RouteStage
from gateway.pipeline.settle import Settle, SettleHook
from gateway.providers.base import BedrockOptions, Provider
from gateway.providers.local import Loader, LocalProvider, default_loader
from gateway.routes import accounting as accounting_routes
from gateway.routes import admin, bedrock, cache, health, metrics, models, openai
from gateway.routes import experiments as experiment_routes
from gateway.routes.hot import StrataApp
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
    tracing: Tracing | None = None,
) -> FastAPI:
    """``admit_stages`` may refuse a call before any upstream attempt; ``settle_hooks`` run once
    per call with its outcome (tests pass a recorder here). Both come after the built-in ones
    (accounting's: key scope, limits and budget; ledger and corrections). ``tracing``
    replaces the OpenTelemetry set-up read from ``OTEL_EXPORTER_OTLP_ENDPOINT`` (tests pass one
    with in-memory exporters)."""
    settings = settings or get_settings()
    config = load_config(settings)  # fail before serving, with the file/key/reason
    home = settings.home.resolve()
    # Relative to the working directory by default: starting elsewhere means another key.
    log.info("state directory (dev key, variants): %s", home)
    keys = build_key_store(home, settings.dev_key, settings.auth_disabled)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            providers, loading = await _open_providers(stack, settings, config, local_loader)
            # Opened before the pipeline's settle, so it closes after the last settle drained.
            accounting = await Accounting.open(stack, settings, config.prices)
            variants = RegistryResolver(home / "variants.sqlite")
            experiments = await open_experiments(stack, settings, config, accounting.db, variants)
            route = RouteStage(config.routes(), variants, live=experiments.live)
            region = config.bedrock.region or settings.aws_region
            endpoint = config.bedrock.endpoint_url or settings.bedrock_endpoint_url
            tracer = tracing or from_environment(stack, bedrock_address(endpoint, region))
            attempt = AttemptStage(providers, trace=tracer.attempt if tracer else None)
            observability = await Observability.open(
                stack,
                metrics=config.metrics,
                access_log=config.access_log,
                cloudwatch=config.cloudwatch,
                prices=accounting.prices,
                breakers=attempt.breakers.states,
                tracing=tracer,
                region=region,
                # Set in each forked worker by the supervisor (gateway/workers.py).
                worker=getattr(app.state, "strata_worker", None),
            )
            graders = open_graders(config.graders, route.aliases, accounting.db, lambda: pipeline)
            bodies = BodyWriter(accounting.db)  # closes after settle drained (stack order)
            stack.callback(bodies.close)
            settle = Settle(
                [
                    AccountingSettle(accounting, region),
                    observability.settle,
                    BodiesSettle(bodies),
                    graders,
                    *(settle_hooks or []),
                ]
            )
            stack.push_async_callback(settle.drain)
            pipeline = Pipeline(
                admit=[
                    AccountingAdmit(accounting, route.is_alias),
                    BodiesAdmit(),
                    *(admit_stages or []),
                    graders,  # last: only admitted calls are drawn for grading
                ],
                route=route,
                cache=open_cache(settings, accounting, invoke_model(providers)),
                attempt=attempt,
                settle=settle,
            )
            open_access = isinstance(keys, OpenAccess)
            state = GatewayState(
                settings,
                keys if open_access else Keyring(keys, accounting.keys),
                pipeline,
                providers,
                auth_disabled=open_access,
                variants=variants,
                accounting=accounting,
                observability=observability,
                graders=graders,
                experiments=experiments,
            )
            graders.start()
            stack.push_async_callback(graders.close)  # before settle.drain, LIFO
            observability.prometheus.registry.register(GraderCollector(graders))
            app.state.strata = state
            checks = asyncio.ensure_future(state.check_aws_credentials())
            stack.callback(checks.cancel)
            aliases = ", ".join(pipeline.route.aliases)
            if loading:
                log.info(
                    "gateway accepting requests (aliases: %s); loading local model(s) %s in "
                    "the background, /readyz says when they are ready",
                    aliases,
                    ", ".join(loading),
                )
            else:
                log.info("gateway ready to accept requests; aliases: %s", aliases)
            freeze_startup_heap()  # last: full collections no longer walk the start-up heap
            stack.callback(thaw_startup_heap)
            yield

    app = StrataApp(
        # Answered before the middleware stack; the router below holds them too, for the
        # other methods on those paths.
        hot=[*openai.routes, *bedrock.routes],
        title="Strata gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # A slash redirect would be unauthenticated and built from the Host header; API
        # clients never need one, so an unknown path is a plain 404.
        redirect_slashes=False,
    )
    handlers.install(app)
    app.router.routes.extend(
        [
            *health.routes,
            *openai.routes,
            *models.routes,
            *bedrock.routes,
            *experiment_routes.routes,  # before admin's {alias:path} routes
            *admin.routes,
            *accounting_routes.routes,
            *cache.routes,
            *metrics.routes,
            *dashboard.routes,
        ]
    )
    return app


def _preloaded(config: GatewayConfig) -> list[str]:
    """Local bases some alias names: loaded at start, others on first use. The ``default`` alias
    added to a strata.yaml that did not name it is loaded lazily, so a Bedrock-only config never
    imports torch."""
    bases: list[str] = []
    for alias, entry in config.aliases.items():
        if alias == "default" and config.implied_default:
            continue
        for chain in entry.chains():
            bases += [t.model for t in chain if t.kind == "local" and t.model not in bases]
    return bases


async def _open_providers(
    stack: AsyncExitStack,
    settings: Settings,
    config: GatewayConfig,
    local_loader: Loader,
) -> tuple[dict[Kind, Provider], list[str]]:
    from gateway.providers.bedrock import BedrockProvider
    from gateway.providers.bedrock_direct import DirectBedrockProvider
    from gateway.providers.bedrock_regions import RegionalBedrock
    from gateway.wire.blobs import runtime_shapes

    runtime_shapes()  # read botocore's model now rather than on the first Bedrock-native call
    # A model loads after start-up (in the background, or on first use), so torch, transformers
    # and the model's own objects would otherwise stay in the generations every full collection
    # walks: 165-180 ms a collection with the built-in model, an event-loop stall each time.
    local = LocalProvider(
        config.local.bases, local_loader, config.unavailable, on_loaded=freeze_startup_heap
    )
    stack.callback(local.close)
    loading = []
    for base in _preloaded(config):
        future = local.preload(base)
        if future is not None:
            loading.append(base)
            future.add_done_callback(functools.partial(_log_loaded, base))
    bedrock_regions = {
        target.region
        for entry in config.aliases.values()
        for chain in entry.chains()
        for target in chain
        if target.kind == "bedrock"
    }
    transport = DirectBedrockProvider if settings.bedrock_transport == "direct" else BedrockProvider
    options = BedrockOptions(
        region=config.bedrock.region or settings.aws_region,
        endpoint_url=config.bedrock.endpoint_url or settings.bedrock_endpoint_url,
        connect_timeout=settings.bedrock_connect_timeout_s,
        read_timeout=settings.bedrock_read_timeout_s,
        max_connections=settings.bedrock_max_connections,
        keepalive=settings.bedrock_keepalive_s,
    )
    bedrock = RegionalBedrock(stack, options, transport.open)
    # Regions the config names are opened now, so the first request does not pay for it; any
    # other region (a target named in a request) opens on first use.
    for region in sorted(bedrock_regions, key=str):
        await bedrock.client(region or options.region)
    providers: dict[Kind, Provider] = {"local": local, "bedrock": bedrock}
    return providers, loading


def _log_loaded(base: str, future: asyncio.Future[object]) -> None:
    error = None if future.cancelled() else future.exception()
    if future.cancelled() or error is not None:
        log.error(
            "local model %r failed to load (%s: %s); requests to it answer 503",
            base,
            type(error).__name__,
            error,
        )
    else:
        log.info("gateway ready: local model %r is loaded", base)
