"""Acceptance 3: with the SDK's in-memory exporters, one call with one retry gives a call span
and two attempt spans, GenAI attributes and the right token counts; the client's traceparent
is continued; no prompt text reaches any attribute."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.app import create_app
from gateway.observability.tracing import Tracing, bedrock_address
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve
from tests.observability.conftest import MODEL

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
PROMPT = "the secret-prompt-words zebra"


class ThrottleFirst:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: FakeRequest) -> Reply:
        self.calls += 1
        if self.calls == 1:
            return Reply(error="ThrottlingException")
        return Reply(text="zebra answer words", input_tokens=17, output_tokens=5)


def _retrying_app(
    tmp_path: Path, wire: BedrockWireServer, provider: TracerProvider, meters: MeterProvider
) -> FastAPI:
    """A gateway whose alias `chat` retries, traced by ``provider`` and metered by ``meters``."""
    config = tmp_path / "strata.yaml"
    config.write_text(
        f"aliases:\n  chat:\n    targets: [bedrock:{MODEL}]\n"
        "    retry: {max_attempts: 3, base_ms: 1, cap_ms: 2, budget_ratio: 1.0}\n"
        f"bedrock:\n  region: us-east-1\n  endpoint_url: {wire.endpoint_url}\n"
    )
    settings = Settings(home=tmp_path / "home", config=config, dev_key=TEST_KEY)  # type: ignore[call-arg]
    tracing = Tracing(
        provider.get_tracer("test"), bedrock_address(wire.endpoint_url, "us-east-1"), meters
    )
    return create_app(settings, tracing=tracing)


def test_one_retry_gives_a_call_span_and_two_attempt_spans(tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    handler = ThrottleFirst()
    with (
        BedrockWireServer(handler) as wire,
        serve(_retrying_app(tmp_path, wire, provider, meters)) as url,
    ):
        response = httpx.post(
            f"{url}/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {TEST_KEY}",
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
            },
            json={"model": "chat", "messages": [{"role": "user", "content": PROMPT}]},
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-strata-attempts"] == "2" and handler.calls == 2
    finished = spans.get_finished_spans()
    calls = [s for s in finished if s.kind == SpanKind.SERVER]
    attempts = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert len(calls) == 1 and len(attempts) == 2
    call = calls[0]
    # The client's trace is continued: same trace id, its span is the parent.
    assert format(call.context.trace_id, "032x") == TRACE_ID
    assert call.parent is not None and format(call.parent.span_id, "016x") == PARENT_ID
    for a in attempts:
        assert a.parent is not None and a.parent.span_id == call.context.span_id
        assert a.context.trace_id == call.context.trace_id
        assert a.attributes is not None
        assert a.attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert a.attributes["gen_ai.request.model"] == MODEL
        assert a.attributes["server.address"] == "127.0.0.1"
    first, second = sorted(attempts, key=lambda s: s.start_time or 0)
    assert first.attributes is not None and second.attributes is not None
    assert first.status.status_code == StatusCode.ERROR
    assert first.attributes["error.type"] == "throttled"
    assert "gen_ai.usage.input_tokens" not in first.attributes
    assert second.attributes["gen_ai.usage.input_tokens"] == 17
    assert second.attributes["gen_ai.usage.output_tokens"] == 5
    attrs = call.attributes
    assert attrs is not None
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.system"] == "aws.bedrock"
    assert attrs["gen_ai.request.model"] == "chat"
    assert attrs["gen_ai.response.model"] == MODEL
    assert attrs["gen_ai.usage.input_tokens"] == 17
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("end_turn",)  # type: ignore[arg-type]
    assert attrs["strata.alias"] == "chat" and attrs["strata.attempts"] == 2
    assert attrs["strata.tenant"] == "dev" and attrs["strata.cache"] == "bypass"
    assert call.start_time is not None and first.start_time is not None
    assert call.start_time <= first.start_time  # the call span covers its attempts
    # No prompt (or completion) text anywhere.
    for span in finished:
        for value in (span.attributes or {}).values():
            assert "zebra" not in str(value) and "secret" not in str(value)
        assert "zebra" not in span.name
    # GenAI metrics.
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        m.name: list(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    usage = {
        dict(p.attributes or {})["gen_ai.token.type"]: p.sum
        for p in points["gen_ai.client.token.usage"]
    }  # type: ignore[union-attr]
    assert usage == {"input": 17, "output": 5}
    assert sum(p.count for p in points["gen_ai.client.operation.duration"]) == 1  # type: ignore[union-attr]


def test_sampled_out_calls_make_no_spans_and_keep_their_metrics(tmp_path: Path) -> None:
    """Issue 17: with a sampler (OTEL_TRACES_SAMPLER, read by the SDK's TracerProvider) that
    drops a call, no span or attribute is built for it or its attempts; its GenAI metrics
    are still recorded, and the call is answered as usual."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    handler = ThrottleFirst()
    with (
        BedrockWireServer(handler) as wire,
        serve(_retrying_app(tmp_path, wire, provider, meters)) as url,
    ):
        response = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {TEST_KEY}"},
            json={"model": "chat", "messages": [{"role": "user", "content": PROMPT}]},
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-strata-attempts"] == "2"
    assert spans.get_finished_spans() == ()
    data = reader.get_metrics_data()
    assert data is not None
    usage = {
        dict(p.attributes or {})["gen_ai.token.type"]: p.sum  # type: ignore[union-attr]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.token.usage"
        for p in m.data.data_points
    }
    assert usage == {"input": 17, "output": 5}
