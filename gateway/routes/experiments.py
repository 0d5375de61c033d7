"""Experiment outcomes over HTTP: ``POST /v1/feedback`` (a key rates its own tenant's
requests), ``GET /admin/experiments/{name}/stats`` (admin keys: the report and verdict),
``POST /admin/experiments/{name}/outcomes`` (replay's grades) and ``GET /admin/graders``.

Thin: parse, check the caller, hand to ``gateway.experiments``; database calls run off the loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import InvalidRequest
from gateway.experiments import lineage, store
from gateway.experiments.feedback import FeedbackBody, rate
from gateway.experiments.live import build
from gateway.experiments.outcomes import OutcomesBody, record_outcomes
from gateway.experiments.report import ReportOptions, report, running_window
from gateway.experiments.store import ExperimentRecord
from gateway.http import json_response
from gateway.routes.accounting import _accounting, _admin, _body
from gateway.routes.admin import experiment_for
from gateway.state import get_state


async def feedback(request: Request) -> Response:
    accounting, who = _accounting(request)
    body: FeedbackBody = await _body(request, FeedbackBody)
    stored = await asyncio.to_thread(rate, accounting.db, accounting.ledger, who, body)
    return json_response(stored)


def _options(request: Request, record: ExperimentRecord) -> ReportOptions:
    """The query's options; what it leaves out comes from the experiment's definition."""
    q = request.query_params

    def number(name: str, default: float, kind: type[float] | type[int]) -> float:
        raw = q.get(name)
        if raw is None:
            return default
        try:
            return kind(raw)
        except ValueError:
            raise InvalidRequest(f"{name}: not a number: {raw!r}", param=name) from None

    alpha = number("alpha", record.alpha, float)
    if not 0 < alpha < 1:
        raise InvalidRequest("alpha: must be between 0 and 1", param="alpha")
    min_samples = int(number("min_samples", record.min_samples, int))
    if min_samples < 2:
        raise InvalidRequest("min_samples: must be at least 2", param="min_samples")
    return ReportOptions(
        control=q.get("control") or record.control,
        candidate=q.get("candidate") or record.candidate,
        guardrails=q.getlist("guardrail") or record.guardrails,
        alpha=alpha,
        min_samples=min_samples,
        since=number("since", 0.0, float),
        metric=q.get("metric") or record.metric,
    )


async def experiment_stats(request: Request) -> Response:
    _, record, _ = experiment_for(request)  # admin check first
    accounting, _ = _accounting(request)
    options = _options(request, record)
    # This replica's recent records are still in the ledger's buffer (sealed every 0.2 s),
    # and its forced-arm notes and grades in the graders' (written every 0.2 s).
    await asyncio.to_thread(accounting.ledger.flush, 2.0)
    graders = get_state(request).graders
    if graders is not None:
        await graders.flush()
    events = await asyncio.to_thread(store.events, accounting.db, record.name)
    options = replace(options, ratio_window=running_window(events))
    try:
        body = await asyncio.to_thread(report, accounting.db, build(record), options)
    except ValueError as exc:
        text = str(exc)  # names the option at fault: "control: …", "guardrail '…': …"
        raise InvalidRequest(text, param=text.split(":")[0].split(" ")[0]) from None
    registry = get_state(request).variants
    body |= {
        "alias": record.alias,
        "status": record.status,
        "metric": options.metric,
        "ramp": {"steps": record.ramp, "step": record.ramp_step, "every_s": record.step_every_s}
        if record.ramping
        else None,
        "lineage": await asyncio.to_thread(lineage.chain, record, events, registry),
    }
    return json_response(body)


async def graders(request: Request) -> Response:
    """``GET /admin/graders``: each configured grader's sampling and its results so far."""
    _admin(request)
    service = get_state(request).graders
    if service is None:
        return json_response({"graders": {}})
    await service.flush()  # what it reports as graded is then in the grades table
    return json_response(service.stats())


async def outcomes(request: Request) -> Response:
    """``POST /admin/experiments/{name}/outcomes``: grades computed elsewhere (strata ab
    replay) stored beside the ledger records of the experiment."""
    _, record, _ = experiment_for(request)  # admin check first
    accounting = _admin(request)
    body: OutcomesBody = await _body(request, OutcomesBody)
    stored = await asyncio.to_thread(record_outcomes, accounting, record.name, body)
    return json_response({"stored": stored})


routes = [
    Route("/v1/feedback", feedback, methods=["POST"]),
    Route("/admin/graders", graders, methods=["GET"]),
    # Before admin.py's /admin/experiments/{name}/{action}, which would take it as an action.
    Route("/admin/experiments/{name}/stats", experiment_stats, methods=["GET"]),
    Route("/admin/experiments/{name}/outcomes", outcomes, methods=["POST"]),
]
