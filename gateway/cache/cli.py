"""``strata cache stats`` and ``strata cache flush [--tenant T]``: through a running gateway's
admin routes (an in-process cache lives only in that process; a Redis one is flushed for
every replica at once)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

cache_app = typer.Typer(no_args_is_help=True, help="The response cache: counters, flush.")

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="the gateway (default: http://STRATA_HOST:STRATA_PORT)"),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="STRATA_ADMIN_KEY", help="an admin key (default: the dev key)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


def _admin_call(method: str, path: str, url: str | None, key: str | None, **params: str) -> Any:
    import httpx

    from gateway.settings import Settings

    settings = Settings()
    base = url or f"http://{settings.host}:{settings.port}"
    token = key or settings.dev_key
    if not token:
        typer.echo("strata: give an admin key (--key or STRATA_ADMIN_KEY)", err=True)
        raise typer.Exit(2)
    try:
        r = httpx.request(
            method,
            base + path,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.TransportError as exc:
        typer.echo(f"strata: cannot reach the gateway at {base}: {exc}", err=True)
        raise typer.Exit(2) from None
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text
        typer.echo(f"strata: {r.status_code}: {message}", err=True)
        raise typer.Exit(2)
    return r.json()


@cache_app.command("stats")
def stats(url: UrlOpt = None, key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Hits, misses, bypasses, stores, entries, bytes, evictions, Redis errors, saved cost."""
    data = _admin_call("GET", "/admin/cache", url, key)
    if as_json:
        typer.echo(json.dumps(data))
        return
    for name, value in data.items():
        typer.echo(f"{name:>12}  {value}")


@cache_app.command("flush")
def flush(
    tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant's")] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop cached answers: all of them, or one tenant's."""
    params = {"tenant": tenant} if tenant is not None else {}
    data = _admin_call("POST", "/admin/cache/flush", url, key, **params)
    if as_json:
        typer.echo(json.dumps(data))
        return
    whose = f"tenant {tenant!r}" if tenant is not None else "all tenants"
    typer.echo(f"flushed {data['flushed']} entries of {whose} ({data['backend']})")
