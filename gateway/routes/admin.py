"""Admin routes (admin keys only): ``PUT /admin/experiments/{alias}`` changes an experiment's
weights at run time, ``GET`` shows them.

Weights live in this process (each replica has its own until they are kept in Redis).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.http import json_response, principal, read_body
from gateway.pipeline.experiments import Experiment
from gateway.state import get_state
from gateway.wire.parse import load_json

_MAX_BODY = 64 * 1024


def _experiment(request: Request) -> Experiment:
    state = get_state(request)
    if not principal(request, state).admin:
        raise Forbidden("this route needs an admin key")
    alias: str = request.path_params["alias"]
    experiment = state.pipeline.route.experiment(alias)
    if experiment is None:
        known = [a for a in state.pipeline.route.aliases if state.pipeline.route.experiment(a)]
        raise NotFound(
            f"alias {alias!r} has no experiment; aliases with one: {', '.join(known) or 'none'}",
            param="alias",
        )
    return experiment


def _view(experiment: Experiment) -> dict[str, object]:
    return {
        "alias": experiment.alias,
        "sticky_by": experiment.sticky_by,
        "salt": experiment.salt,
        "weights": experiment.weights,
    }


async def show(request: Request) -> Response:
    return json_response(_view(_experiment(request)))


async def put_weights(request: Request) -> Response:
    experiment = _experiment(request)
    body = load_json(await read_body(request, _MAX_BODY))
    weights = body.get("weights") if isinstance(body, dict) else None
    if not isinstance(weights, dict):
        raise InvalidRequest(
            "weights: must be an object of variant name to weight", param="weights"
        )
    experiment.set_weights(weights)
    return json_response(_view(experiment))


routes = [
    Route("/admin/experiments/{alias:path}", show, methods=["GET"]),
    Route("/admin/experiments/{alias:path}", put_weights, methods=["PUT"]),
]
