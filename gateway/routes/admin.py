"""Experiment admin routes (admin keys only), kept in the state store so every replica agrees:

    GET  /admin/experiments                 every experiment with its shares (the dashboard)
    POST /admin/experiments                 create one (``strata ab create``)
    GET  /admin/experiments/{name}          one, with its decision record
    PUT  /admin/experiments/{name}          {"weights": {...}}: new weights for a running one
    POST /admin/experiments/{name}/{action} pause | resume | stop | promote | rollback

``{name}`` is an experiment's name, or an alias (the experiment routing it now). Thin: parse,
check the caller, hand to ``gateway.experiments``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidRequest, UpstreamUnavailable
from gateway.experiments import store
from gateway.experiments.service import Experiments
from gateway.experiments.spec import CreateBody, parse_duration, parse_ramp
from gateway.experiments.store import ExperimentRecord
from gateway.http import json_response, principal, read_body
from gateway.routes.accounting import _body
from gateway.state import get_state
from gateway.wire.parse import load_json

_MAX_BODY = 64 * 1024


def admin_experiments(request: Request) -> tuple[Experiments, str]:
    """The experiments service and who is asking (``tenant/key id``), for an admin key."""
    state = get_state(request)
    who = principal(request, state)
    if not who.admin:
        raise Forbidden("this route needs an admin key")
    if state.experiments is None:
        raise UpstreamUnavailable("experiments are not enabled on this gateway")
    return state.experiments, f"{who.tenant}/{who.key_id}"


def experiment_for(request: Request) -> tuple[Experiments, ExperimentRecord, str]:
    experiments, actor = admin_experiments(request)
    return experiments, experiments.find(request.path_params["name"]), actor


def shares(record: ExperimentRecord) -> dict[str, float]:
    """Each arm's share of the alias's traffic now, in percent."""
    weights = record.effective_weights()
    total = sum(weights.values()) or 1.0
    return {arm: round(100 * w / total, 4) for arm, w in weights.items()}


def summary(experiments: Experiments, record: ExperimentRecord) -> dict[str, Any]:
    return experiments.view(record) | {"shares": shares(record)}


async def list_experiments(request: Request) -> Response:
    experiments, _ = admin_experiments(request)
    wanted = request.query_params.getlist("status")
    records = sorted(experiments.live.records(), key=lambda r: (r.created_at, r.name))
    data = [summary(experiments, r) for r in records if not wanted or r.status in wanted]
    return json_response({"data": data})


async def create(request: Request) -> Response:
    experiments, actor = admin_experiments(request)
    body: CreateBody = await _body(request, CreateBody)
    record = await experiments.create(body, actor)
    return json_response(summary(experiments, record), status=201)


async def show(request: Request) -> Response:
    experiments, record, _ = experiment_for(request)
    events = await asyncio.to_thread(store.events, experiments.db, record.name)
    return json_response(summary(experiments, record) | {"events": events})


async def put_weights(request: Request) -> Response:
    experiments, record, actor = experiment_for(request)
    body = load_json(await read_body(request, _MAX_BODY))
    weights = body.get("weights") if isinstance(body, dict) else None
    if not isinstance(weights, dict):
        raise InvalidRequest(
            "weights: must be an object of variant name to weight", param="weights"
        )
    record = await experiments.set_weights(record, weights, actor)
    return json_response(summary(experiments, record))


async def action(request: Request) -> Response:
    experiments, record, actor = experiment_for(request)
    name = request.path_params["action"]
    if name in ("pause", "resume", "stop"):
        record = await experiments.transition(record, name, actor)
        return json_response(summary(experiments, record))
    if name == "promote":
        promote: PromoteBody = await _body(request, PromoteBody)
        ramp = parse_ramp(promote.ramp) if promote.ramp is not None else None
        every = parse_duration(promote.step_every) if promote.step_every is not None else None
        if every is not None and ramp is None:
            raise InvalidRequest("step_every: only with ramp", param="step_every")
        record = await experiments.promote(
            record,
            actor,
            to=promote.to,
            ramp=ramp,
            step_every_s=every,
            min_samples=promote.min_samples,
        )
    elif name == "rollback":
        back: RollbackBody = await _body(request, RollbackBody)
        record = await experiments.rollback(record, actor, back.reason or "rolled back by hand")
    else:
        raise InvalidRequest(
            f"action: unknown {name!r}; one of pause, resume, stop, promote, rollback",
            param="action",
        )
    return json_response(summary(experiments, record))


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = None  # an arm; default: the verdict's winner
    ramp: str | list[float] | None = None  # "10,25,50,100": the candidate's share per step
    step_every: str | None = None  # "30m"; s, m, h (and ms) accepted
    min_samples: int | None = Field(default=None, ge=2)  # for the verdict, if not the experiment's


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


routes = [
    Route("/admin/experiments", list_experiments, methods=["GET"]),
    Route("/admin/experiments", create, methods=["POST"]),
    Route("/admin/experiments/{name}", show, methods=["GET"]),
    Route("/admin/experiments/{name}", put_weights, methods=["PUT"]),
    Route("/admin/experiments/{name}/{action}", action, methods=["POST"]),
]
