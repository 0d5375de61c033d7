"""OpenTelemetry traces and GenAI metrics, per the GenAI semantic conventions: a span per call
(started at the call's start, ended at settle) and a child span per upstream attempt; the
client's W3C ``traceparent`` is continued. Attributes carry names, counts and timings, never
prompt or completion text.

Enabled when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP over HTTP; the other
``OTEL_*`` variables apply as the SDK reads them), or when a test hands in its own providers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.canonical import ConverseResponse
from gateway.errors import StrataError
from gateway.observability.record import CallRecord
from gateway.pipeline.call import Call, error_class
from gateway.targets import Target

SPAN = "otel_span"  # call.context key of the call's span
PROVIDER = "aws.bedrock"
_PROPAGATOR = TraceContextTextMapPropagator()
# Bucket bounds the GenAI conventions advise for these two histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48)


def _system(target: Target | None) -> str:
    return PROVIDER if target is None or target.kind == "bedrock" else "strata.local"


def _epoch_ns(monotonic: float) -> int:
    return time.time_ns() - int((time.monotonic() - monotonic) * 1e9)


@dataclass
class Tracing:
    tracer: trace.Tracer
    # The upstream's host for a target (server.address); None where there is none (local).
    server_address: Callable[[Target | None], str | None] = lambda target: None
    meter: MeterProvider | None = None

    def __post_init__(self) -> None:
        self._tokens = self._duration = None
        if self.meter is not None:
            m = self.meter.get_meter("strata.gateway")
            self._tokens = m.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Tokens used per call, by gen_ai.token.type",
                explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
            )
            self._duration = m.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="Call duration as the gateway's clients saw it",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )

    def call_span(self, call: Call) -> Span:
        span: Span | None = call.context.get(SPAN)
        if span is None:
            parent = None
            if call.hints.traceparent:
                carrier = {"traceparent": call.hints.traceparent}
                if call.hints.tracestate:
                    carrier["tracestate"] = call.hints.tracestate
                parent = _PROPAGATOR.extract(carrier)
            span = self.tracer.start_span(
                f"chat {call.model}",
                context=parent,
                kind=SpanKind.SERVER,
                start_time=_epoch_ns(call.started),
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": call.model,
                    "strata.request_id": call.request_id,
                    "strata.surface": call.surface,
                    "strata.stream": call.stream,
                },
            )
            call.context[SPAN] = span
        return span

    def attempt(
        self, call: Call, target: Target
    ) -> AbstractContextManager[Callable[[object], None]]:
        return self._attempt(call, target)

    @contextmanager
    def _attempt(self, call: Call, target: Target) -> Iterator[Callable[[object], None]]:
        call_span = self.call_span(call)
        if not call_span.is_recording():
            # Sampled out (OTEL_TRACES_SAMPLER): the child would be dropped too, so build
            # neither it nor its attributes.
            yield _ignore
            return
        started = time.time_ns()
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": _system(target),
            "gen_ai.system": _system(target),
            "gen_ai.request.model": target.model,
            "strata.target": str(target),
            "strata.attempt": call.outcome.attempts,
        }
        address = self.server_address(target)
        if address:
            attributes["server.address"] = address

        def answered(result: object) -> None:
            if isinstance(result, ConverseResponse):
                attributes["gen_ai.usage.input_tokens"] = result.usage.inputTokens
                attributes["gen_ai.usage.output_tokens"] = result.usage.outputTokens
                attributes["gen_ai.response.finish_reasons"] = [str(result.stopReason)]
            attributes["gen_ai.response.model"] = target.model

        error: str | None = None
        try:
            yield answered
        except BaseException as exc:
            error = error_class(exc) if isinstance(exc, StrataError) else type(exc).__name__
            attributes["error.type"] = error
            raise
        finally:
            # The span is made once the attempt is over, its attributes all known: one pass
            # through the SDK's attribute checks instead of one per set_attribute, each under
            # the span's lock. Its start and end are the attempt's own.
            span = self.tracer.start_span(
                f"chat {target.model}",
                context=trace.set_span_in_context(call_span),
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=started,
            )
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error))
            span.end()

    def settled(self, call: Call, rec: CallRecord) -> None:
        """A settle sink: the call span's outcome attributes, then its end."""
        span = self.call_span(call)
        target = call.outcome.target
        if span.is_recording():
            self._end_call_span(span, call, rec, target)
        else:
            span.end()
        self._record_metrics(call, rec, target)

    def _end_call_span(
        self, span: Span, call: Call, rec: CallRecord, target: Target | None
    ) -> None:
        attrs: dict[str, Any] = {
            "gen_ai.provider.name": _system(target),
            "gen_ai.system": _system(target),
            "gen_ai.usage.input_tokens": rec.tokens[0],
            "gen_ai.usage.output_tokens": rec.tokens[1],
            "strata.alias": rec.alias,
            "strata.tenant": rec.tenant,
            "strata.cache": rec.cache,
            "strata.attempts": rec.attempts,
            "http.response.status_code": rec.status,
        }
        if target is not None:
            attrs["gen_ai.response.model"] = target.model
            attrs["strata.target"] = rec.target
        if rec.variant:
            attrs["strata.variant"] = rec.variant
        if rec.finish_reason:
            attrs["gen_ai.response.finish_reasons"] = [rec.finish_reason]
        address = self.server_address(target)
        if address:
            attrs["server.address"] = address
        if rec.error_class is not None:
            attrs["error.type"] = rec.error_class
            span.set_status(Status(StatusCode.ERROR, rec.error_class))
        span.set_attributes(attrs)
        span.end()

    def _record_metrics(self, call: Call, rec: CallRecord, target: Target | None) -> None:
        if self._tokens is not None and self._duration is not None:
            common = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": _system(target),
                "gen_ai.request.model": call.model,
            }
            if rec.error_class is not None:
                common["error.type"] = rec.error_class
            self._duration.record(rec.latency_s, common)
            if rec.error_class is None:
                self._tokens.record(rec.tokens[0], {**common, "gen_ai.token.type": "input"})
                self._tokens.record(rec.tokens[1], {**common, "gen_ai.token.type": "output"})


def _ignore(result: object) -> None:
    return None


def bedrock_address(
    endpoint_url: str | None, default_region: str
) -> Callable[[Target | None], str | None]:
    """server.address for a target: the configured endpoint's host, else Bedrock's regional
    runtime host."""
    host = urlparse(endpoint_url).hostname if endpoint_url else None

    def address(target: Target | None) -> str | None:
        if target is None or target.kind != "bedrock":
            return None
        return host or f"bedrock-runtime.{target.region or default_region}.amazonaws.com"

    return address


def from_environment(
    stack: AsyncExitStack, server_address: Callable[[Target | None], str | None]
) -> Tracing | None:
    """OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else no tracing at all (the hot
    path then pays nothing)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "strata")})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = SdkMeterProvider(
        resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
    )
    stack.callback(meter_provider.shutdown)
    stack.callback(tracer_provider.shutdown)
    return Tracing(tracer_provider.get_tracer("strata.gateway"), server_address, meter_provider)
