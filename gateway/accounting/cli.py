"""``strata keys …``, ``strata tenants …`` and ``strata usage``: straight to the accounting
database (``STRATA_DATABASE_URL``, else SQLite in ``STRATA_HOME``), so they work with the
gateway running or not; a running gateway sees a change within ``keys_refresh_s``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from gateway.accounting.money import usd_text
from gateway.errors import StrataError

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")
tenants_app = typer.Typer(no_args_is_help=True, help="Tenant-wide limits and budgets.")

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


@contextmanager
def _admin() -> Iterator[Any]:
    from gateway.accounting.keys import KeyAdmin
    from gateway.accounting.store import Database, StoreUnavailable
    from gateway.settings import Settings

    settings = Settings()
    db = Database(settings.database_url, settings.home)
    try:
        db.migrate()
        yield KeyAdmin(db)
    except (StrataError, StoreUnavailable) as exc:
        typer.echo(f"strata: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.close()


def _usd(value: str | None, option: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"not a number: {value!r}", param_hint=option) from None


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="tenant the key belongs to")],
    name: Annotated[str | None, typer.Option(help="a label for people")] = None,
    budget_usd: Annotated[str | None, typer.Option(help="hard budget in USD")] = None,
    budget_period: Annotated[str, typer.Option(help="total or monthly")] = "total",
    rpm: Annotated[int | None, typer.Option(help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(help="tokens per minute")] = None,
    models: Annotated[
        str | None, typer.Option(help="comma-separated aliases it may use (default: all)")
    ] = None,
    allow_targets: Annotated[
        str | None,
        typer.Option(help="comma-separated raw target patterns it may name, e.g. 'bedrock:*'"),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="may use /admin routes")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a key. It is printed once and cannot be retrieved later."""
    with _admin() as keys:
        secret, info = keys.create(
            tenant,
            name=name,
            admin=admin,
            models=_csv(models),
            allow_targets=_csv(allow_targets),
            rpm=rpm,
            tpm=tpm,
            budget_usd=_usd(budget_usd, "--budget-usd"),
            budget_period=budget_period,
        )
    if as_json:
        typer.echo(json.dumps({"key": secret, **info.as_json()}))
        return
    typer.echo(f"id:     {info.id}\ntenant: {info.tenant}\nkey:    {secret}")
    typer.echo("Store the key now: it is shown only once.", err=True)


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never their secrets)."""
    with _admin() as keys:
        found = keys.list(tenant)
    if as_json:
        typer.echo(json.dumps([k.as_json() for k in found]))
        return
    for k in found:
        state = "revoked" if k.revoked_at else "active"
        limits = ", ".join(
            f"{n}={v}"
            for n, v in (("rpm", k.rpm), ("tpm", k.tpm), ("budget_usd", usd_text(k.budget_usd)))
            if v is not None
        )
        scope = "admin" if k.admin else ",".join(k.models or ["*"])
        typer.echo(f"{k.id}  {k.tenant:<16} {state:<8} {scope:<20} {limits}")


@keys_app.command("revoke")
def revoke(key_id: str, as_json: JsonOpt = False) -> None:
    """Revoke a key; every replica refuses it within a second or two."""
    with _admin() as keys:
        info = keys.revoke(key_id)
    typer.echo(json.dumps(info.as_json()) if as_json else f"revoked {info.id}")


@tenants_app.command("set")
def set_tenant(
    tenant: str,
    budget_usd: Annotated[str | None, typer.Option(help="hard budget in USD")] = None,
    budget_period: Annotated[str, typer.Option(help="total or monthly")] = "total",
    rpm: Annotated[int | None, typer.Option(help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(help="tokens per minute")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a tenant's limits (shared by all of its keys), replacing earlier ones."""
    with _admin() as keys:
        limits = keys.set_tenant(
            tenant,
            rpm=rpm,
            tpm=tpm,
            budget_usd=_usd(budget_usd, "--budget-usd"),
            budget_period=budget_period,
        )
    out = {"tenant": tenant, **vars(limits)}
    typer.echo(json.dumps(out) if as_json else f"{tenant}: {vars(limits)}")


def usage_command(
    group_by: Annotated[
        str, typer.Option(help="tenant, key, model, alias, variant or day")
    ] = "tenant",
    since: Annotated[str | None, typer.Option(help="ISO 8601 time or epoch seconds")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time or epoch seconds")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, tokens, cost, cache savings, error rate and latency from the ledger."""
    from gateway.accounting.usage import check_group, parse_time, usage

    with _admin() as keys:
        rows = usage(
            keys.db,
            check_group(group_by),
            since=parse_time(since, "since"),
            until=parse_time(until, "until"),
            tenant=tenant,
        )
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows]))
        return
    typer.echo(
        f"{group_by:<24} {'requests':>9} {'errors':>7} {'in':>10} {'out':>10} "
        f"{'cache_rd':>9} {'cost_usd':>14} {'p50_ms':>8} {'p95_ms':>8}"
    )
    for r in rows:
        p50 = f"{r.p50_latency_ms:.1f}" if r.p50_latency_ms is not None else "-"
        p95 = f"{r.p95_latency_ms:.1f}" if r.p95_latency_ms is not None else "-"
        typer.echo(
            f"{r.group or '-':<24} {r.requests:>9} {r.errors:>7} {r.input_tokens:>10} "
            f"{r.output_tokens:>10} {r.cache_read_tokens:>9} {r.as_json()['cost_usd']:>14} "
            f"{p50:>8} {p95:>8}"
        )
