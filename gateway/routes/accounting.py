"""Keys, tenants and usage over HTTP: ``/admin/keys``, ``/admin/tenants``, ``/admin/usage``,
``/admin/accounting`` (admin keys only) and ``GET /v1/usage`` (a key's own tenant).

Thin: parse, check the caller, hand to ``gateway.accounting``; database calls run off the loop.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.accounting.keys import Period
from gateway.accounting.service import Accounting
from gateway.accounting.usage import check_group, parse_time, usage
from gateway.auth import Principal
from gateway.errors import Forbidden, InvalidRequest, UpstreamUnavailable
from gateway.http import json_response, principal, read_body
from gateway.state import get_state
from gateway.wire.parse import load_json

_MAX_BODY = 64 * 1024


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1)
    name: str | None = None
    admin: bool = False
    models: list[str] | None = None
    allow_targets: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: Decimal | None = None
    budget_period: Period = "total"


class TenantLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: Decimal | None = None
    budget_period: Period = "total"


def _accounting(request: Request) -> tuple[Accounting, Principal]:
    state = get_state(request)
    who = principal(request, state)
    if state.accounting is None:
        raise UpstreamUnavailable("accounting is not enabled on this gateway")
    return state.accounting, who


def _admin(request: Request) -> Accounting:
    accounting, who = _accounting(request)
    if not who.admin:
        raise Forbidden("this route needs an admin key")
    return accounting


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = load_json(await read_body(request, _MAX_BODY))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequest(f"{field}: {first['msg']}", param=field) from None


async def list_keys(request: Request) -> Response:
    accounting = _admin(request)
    tenant = request.query_params.get("tenant")
    keys = await asyncio.to_thread(accounting.admin.list, tenant)
    return json_response({"data": [k.as_json() for k in keys]})


async def create_key(request: Request) -> Response:
    accounting = _admin(request)
    body: KeyCreate = await _body(request, KeyCreate)
    secret, info = await asyncio.to_thread(
        lambda: accounting.admin.create(
            body.tenant,
            name=body.name,
            admin=body.admin,
            models=body.models,
            allow_targets=body.allow_targets,
            rpm=body.rpm,
            tpm=body.tpm,
            budget_usd=body.budget_usd,
            budget_period=body.budget_period,
        )
    )
    # The only time the key is ever shown.
    return json_response({"key": secret, **info.as_json()}, 201)


async def revoke_key(request: Request) -> Response:
    accounting = _admin(request)
    info = await asyncio.to_thread(accounting.admin.revoke, request.path_params["key_id"])
    return json_response(info.as_json())


async def set_tenant(request: Request) -> Response:
    accounting = _admin(request)
    body: TenantLimits = await _body(request, TenantLimits)
    name: str = request.path_params["tenant"]
    await asyncio.to_thread(
        lambda: accounting.admin.set_tenant(
            name,
            rpm=body.rpm,
            tpm=body.tpm,
            budget_usd=body.budget_usd,
            budget_period=body.budget_period,
        )
    )
    return json_response({"tenant": name, **body.model_dump(mode="json")})


def _usage_query(request: Request, accounting: Accounting, **scope: str | None) -> Any:
    q = request.query_params
    group = check_group(q.get("group_by", "tenant"))
    since, until = parse_time(q.get("since"), "since"), parse_time(q.get("until"), "until")
    return asyncio.to_thread(lambda: usage(accounting.db, group, since=since, until=until, **scope))


async def admin_usage(request: Request) -> Response:
    accounting = _admin(request)
    q = request.query_params
    rows = await _usage_query(request, accounting, tenant=q.get("tenant"), key_id=q.get("key"))
    return json_response({"data": [r.as_json() for r in rows]})


async def own_usage(request: Request) -> Response:
    """A key's own tenant's usage; naming another tenant is refused, not silently ignored."""
    accounting, who = _accounting(request)
    asked = request.query_params.get("tenant")
    if asked is not None and asked != who.tenant and not who.admin:
        raise Forbidden("a key may read only its own tenant's usage", param="tenant")
    rows = await _usage_query(
        request, accounting, tenant=asked or who.tenant, key_id=request.query_params.get("key")
    )
    return json_response({"tenant": asked or who.tenant, "data": [r.as_json() for r in rows]})


async def status(request: Request) -> Response:
    accounting = _admin(request)
    return json_response(
        {
            "database": accounting.db.describe(),
            "redis": accounting.redis is not None,
            "ledger": {**accounting.ledger.stats.as_json(), "backlog": accounting.ledger.backlog},
            "warnings": vars(accounting.warnings),
            "redis_errors": accounting.redis.errors if accounting.redis else 0,
        }
    )


routes = [
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys", create_key, methods=["POST"]),
    Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    Route("/admin/tenants/{tenant}", set_tenant, methods=["PUT"]),
    Route("/admin/usage", admin_usage, methods=["GET"]),
    Route("/admin/accounting", status, methods=["GET"]),
    Route("/v1/usage", own_usage, methods=["GET"]),
]
