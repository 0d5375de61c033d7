"""Prometheus exposition of the metrics core: a custom collector on a registry of its own, read
at scrape time (nothing is updated per request but the core). Names and labels: README
"Metrics and traces"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gateway.observability.metrics import LABEL_NAMES, MetricsCore
from gateway.observability.record import TOKEN_KINDS

# Breaker states as a gauge value.
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
HIST_NAMES = {
    "latency": ("strata_request_duration_seconds", "Whole call, as the gateway saw it"),
    "upstream": ("strata_upstream_duration_seconds", "Waiting on upstream attempts"),
    "overhead": ("strata_overhead_seconds", "Gateway time: total minus upstream and backoff"),
    "ttft": ("strata_time_to_first_token_seconds", "Streams: call start to first event"),
}
BreakerStates = Callable[[], Iterable[tuple[str, str]]]  # (target, state)


# What a scrape exposes: a core and breaker states (one worker's, or every worker's merged).
View = Callable[[], tuple[MetricsCore, Iterable[tuple[str, str]]]]


class CoreCollector(Collector):
    def __init__(self, view: View) -> None:
        self._view = view

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        core, breaker_states = self._view()
        names = list(LABEL_NAMES if core.tenant_label else LABEL_NAMES[:3])
        width = len(names)
        requests = CounterMetricFamily("strata_requests", "Calls settled", labels=names)
        attempts = CounterMetricFamily("strata_attempts", "Upstream attempts", labels=names)
        errors = CounterMetricFamily(
            "strata_errors", "Failed calls by error class", labels=[*names, "class"]
        )
        refusals = CounterMetricFamily(
            "strata_refusals",
            "Calls refused by a budget or a rate limit",
            labels=[*names, "reason"],
        )
        responses = CounterMetricFamily(
            "strata_responses", "Calls by HTTP status", labels=[*names, "status"]
        )
        tokens = CounterMetricFamily("strata_tokens", "Tokens by kind", labels=[*names, "kind"])
        cost = CounterMetricFamily("strata_cost_usd", "Priced spend, USD", labels=names)
        saved = CounterMetricFamily("strata_cache_saved_usd", "Saved by caching, USD", labels=names)
        unpriced = CounterMetricFamily("strata_unpriced", "Calls with no known price", labels=names)
        cache = CounterMetricFamily(
            "strata_cache_lookups", "Response cache lookups", labels=[*names, "result"]
        )
        hists = {
            key: HistogramMetricFamily(name, doc, labels=names, unit="")
            for key, (name, doc) in HIST_NAMES.items()
        }
        for labels, s in core.series():
            values = list(labels[:width])
            requests.add_metric(values, s.requests)
            attempts.add_metric(values, s.attempts)
            cost.add_metric(values, s.cost_pusd / 1e12)
            saved.add_metric(values, s.saved_pusd / 1e12)
            unpriced.add_metric(values, s.unpriced)
            for kind, n in zip(TOKEN_KINDS, s.tokens, strict=True):
                tokens.add_metric([*values, kind], n)
            # list(d.items()) copies in one step under the GIL: this runs in a thread (see
            # routes/metrics.py) while the event loop may add a key to these counters.
            for cls, n in list(s.errors.items()):
                errors.add_metric([*values, cls], n)
            for reason, n in list(s.refusals.items()):
                refusals.add_metric([*values, reason], n)
            for status, n in list(s.statuses.items()):
                responses.add_metric([*values, str(status)], n)
            for result, n in list(s.cache.items()):
                cache.add_metric([*values, result], n)
            for key, family in hists.items():
                h = s.hist[key]
                buckets = [(_le(bound), float(n)) for bound, n in h.cumulative()]
                family.add_metric(values, buckets, sum_value=h.total)
        yield from (requests, attempts, errors, refusals, responses, tokens, cost, saved, unpriced)
        yield cache
        yield from hists.values()
        breaker = GaugeMetricFamily(
            "strata_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            labels=["target"],
        )
        for target, state in list(breaker_states):
            breaker.add_metric([target], BREAKER_VALUES.get(state, 0.0))
        yield breaker


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class PrometheusExporter:
    def __init__(
        self, core: MetricsCore, breakers: BreakerStates, view: View | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CoreCollector(view or (lambda: (core, breakers()))))

    def render(self) -> bytes:
        return generate_latest(self.registry)
