"""Experiment outcomes over HTTP: ``POST /v1/feedback`` (a key rates its own tenant's
requests), ``GET /admin/experiments/{alias}/stats`` (admin keys: the report and verdict),
``POST /admin/experiments/{alias}/outcomes`` (replay's grades) and ``GET /admin/graders``.

Thin: parse, check the caller, hand to ``gateway.experiments``; database calls run off the loop.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import InvalidRequest
from gateway.experiments.feedback import FeedbackBody, rate
from gateway.experiments.outcomes import OutcomesBody, record_outcomes
from gateway.experiments.report import ReportOptions, report
from gateway.http import json_response
from gateway.routes.accounting import _accounting, _admin, _body
from gateway.routes.admin import experiment_for
from gateway.state import get_state


async def feedback(request: Request) -> Response:
    accounting, who = _accounting(request)
    body: FeedbackBody = await _body(request, FeedbackBody)
    stored = await asyncio.to_thread(rate, accounting.db, accounting.ledger, who, body)
    return json_response(stored)


def _options(request: Request) -> ReportOptions:
    q = request.query_params

    def number(name: str, default: float, kind: type[float] | type[int]) -> float:
        raw = q.get(name)
        if raw is None:
            return default
        try:
            return kind(raw)
        except ValueError:
            raise InvalidRequest(f"{name}: not a number: {raw!r}", param=name) from None

    alpha = number("alpha", 0.05, float)
    if not 0 < alpha < 1:
        raise InvalidRequest("alpha: must be between 0 and 1", param="alpha")
    min_samples = int(number("min_samples", 100, int))
    if min_samples < 2:
        raise InvalidRequest("min_samples: must be at least 2", param="min_samples")
    return ReportOptions(
        control=q.get("control"),
        candidate=q.get("candidate"),
        guardrails=q.getlist("guardrail"),
        alpha=alpha,
        min_samples=min_samples,
        since=number("since", 0.0, float),
        metric=q.get("metric", "feedback"),
    )


async def experiment_stats(request: Request) -> Response:
    experiment = experiment_for(request)  # admin check first
    accounting, _ = _accounting(request)
    options = _options(request)
    # This replica's recent records are still in the ledger's buffer (sealed every 0.2 s).
    await asyncio.to_thread(accounting.ledger.flush, 2.0)
    try:
        body = await asyncio.to_thread(report, accounting.db, experiment, options)
    except ValueError as exc:
        text = str(exc)  # names the option at fault: "control: …", "guardrail '…': …"
        raise InvalidRequest(text, param=text.split(":")[0].split(" ")[0]) from None
    return json_response(body)


async def graders(request: Request) -> Response:
    """``GET /admin/graders``: each configured grader's sampling and its results so far."""
    _admin(request)
    service = get_state(request).graders
    return json_response(service.stats() if service is not None else {"graders": {}})


async def outcomes(request: Request) -> Response:
    """``POST /admin/experiments/{alias}/outcomes``: grades computed elsewhere (strata ab
    replay) stored beside the ledger records of the alias's experiment."""
    experiment = experiment_for(request)
    accounting = _admin(request)
    body: OutcomesBody = await _body(request, OutcomesBody)
    stored = await asyncio.to_thread(record_outcomes, accounting, experiment.alias, body)
    return json_response({"stored": stored})


routes = [
    Route("/v1/feedback", feedback, methods=["POST"]),
    Route("/admin/graders", graders, methods=["GET"]),
    Route("/admin/experiments/{alias:path}/outcomes", outcomes, methods=["POST"]),
    # Before admin.py's /admin/experiments/{alias:path}, which would take "…/stats" as an alias.
    Route("/admin/experiments/{alias:path}/stats", experiment_stats, methods=["GET"]),
]
