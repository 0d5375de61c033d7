"""``Observability``: what the lifespan opens: the metrics core, its settle hook, the access log
and the exporters (Prometheus, CloudWatch EMF, OpenTelemetry)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from gateway.accounting.prices import PriceTable
from gateway.observability.access_log import AccessLog
from gateway.observability.cloudwatch import CloudWatchExporter
from gateway.observability.config import AccessLogSection, CloudWatchSection, MetricsSection
from gateway.observability.hook import ObservabilitySettle, Sink
from gateway.observability.metrics import MetricsCore
from gateway.observability.peers import PeerMetrics, WorkerSlot
from gateway.observability.prometheus import BreakerStates, PrometheusExporter
from gateway.observability.tracing import Tracing


@dataclass
class Observability:
    core: MetricsCore
    settle: ObservabilitySettle
    prometheus: PrometheusExporter
    public_metrics: bool
    # Breaker states for the dashboard: every worker's, merged, when there are several.
    breakers: BreakerStates
    cloudwatch: CloudWatchExporter | None = None

    @classmethod
    async def open(
        cls,
        stack: AsyncExitStack,
        *,
        metrics: MetricsSection,
        access_log: AccessLogSection,
        cloudwatch: CloudWatchSection,
        prices: PriceTable | None,
        breakers: BreakerStates,
        sinks: list[Sink] | None = None,
        tracing: Tracing | None = None,
        region: str = "us-east-1",
        worker: WorkerSlot | None = None,
    ) -> Observability:
        core = MetricsCore(tenant_label=metrics.tenant_label)
        view = None
        states = breakers
        if worker is not None:  # one of several workers: /metrics answers for all of them
            peers = PeerMetrics(worker, core, breakers)
            await peers.start(stack)
            view = peers.view
            states = peers.breaker_states
        all_sinks: list[Sink] = list(sinks or [])
        if tracing is not None:
            all_sinks.append(tracing.settled)
        if access_log.enabled:
            all_sinks.append(stack.enter_context(AccessLog(access_log)))
        if cloudwatch.mode == "emf":
            from gateway.observability.emf import EmfExporter

            await EmfExporter(core, cloudwatch).start(stack)
        exporter = None
        if cloudwatch.mode == "api":
            exporter = CloudWatchExporter(core, cloudwatch, region=cloudwatch.region or region)
            await exporter.start(stack)
        return cls(
            core=core,
            settle=ObservabilitySettle(core, prices, all_sinks),
            prometheus=PrometheusExporter(core, breakers, view),
            public_metrics=metrics.public,
            breakers=states,
            cloudwatch=exporter,
        )
