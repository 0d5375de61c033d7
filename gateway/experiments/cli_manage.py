"""``strata ab create | list | pause | resume | stop``: experiments in a running gateway's
state store, through its admin routes (``/admin/experiments…``, an admin key), so they are in
force on every replica. ``--url`` and ``--key`` as for ``ab status``."""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated, Any

import typer

from gateway.experiments.cli import KeyOpt, UrlOpt, _get, _target, ab_app

NameArg = Annotated[str, typer.Argument(help="the experiment's name (or its alias)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the JSON document")]


def _shares(doc: dict[str, Any]) -> str:
    return " ".join(f"{arm}={share:g}%" for arm, share in doc["shares"].items())


def _line(doc: dict[str, Any]) -> str:
    arms = ", ".join(f"{arm}: {' > '.join(chain)}" for arm, chain in doc["arms"].items())
    ramp = ""
    if doc["ramping"]:
        ramp = f"; ramp {','.join(f'{s:g}' for s in doc['ramp'])} at step {doc['ramp_step'] + 1}"
    return f"{doc['name']} on {doc['alias']} [{doc['status']}] {_shares(doc)}{ramp} ({arms})"


@ab_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="a name for the experiment")],
    alias: Annotated[str, typer.Option(help="the alias whose traffic it splits")],
    control: Annotated[str, typer.Option(help="the control's target (bedrock:, local:, variant:)")],
    candidate: Annotated[str, typer.Option(help="the candidate's target")],
    split: Annotated[str, typer.Option(help="control/candidate percentages")] = "90/10",
    sticky_by: Annotated[str, typer.Option(help="key | user | request")] = "key",
    metric: Annotated[str, typer.Option(help="feedback | grader:NAME")] = "feedback",
    guardrail: Annotated[
        list[str] | None, typer.Option(help="e.g. 'p95_latency_ms<+20%' (repeatable)")
    ] = None,
    min_samples: Annotated[int, typer.Option(help="outcomes per arm before a verdict")] = 100,
    alpha: Annotated[float, typer.Option(help="error rate of the sequential test")] = 0.05,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Create an experiment: the alias's traffic split between two targets, in force on every
    replica within a second."""
    base, secret = _target(url, key)
    body = {
        "name": name,
        "alias": alias,
        "control": control,
        "candidate": candidate,
        "split": split,
        "sticky_by": sticky_by,
        "metric": metric,
        "guardrails": guardrail or [],
        "min_samples": min_samples,
        "alpha": alpha,
    }
    doc = _get(f"{base}/admin/experiments", secret, body, method="POST")
    typer.echo(json.dumps(doc, indent=2) if as_json else f"created {_line(doc)}")


@ab_app.command("list")
def list_experiments(
    status: Annotated[
        list[str] | None, typer.Option(help="only these statuses (repeatable)")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Every experiment with its status and current shares."""
    base, secret = _target(url, key)
    query = urllib.parse.urlencode([("status", s) for s in status or []])
    doc = _get(f"{base}/admin/experiments{'?' + query if query else ''}", secret)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    if not doc["data"]:
        typer.echo("no experiments")
    for item in doc["data"]:
        typer.echo(_line(item))


def _act(name: str, action: str, url: str | None, key: str | None, body: Any = None) -> Any:
    base, secret = _target(url, key)
    path = urllib.parse.quote(name, safe="")
    return _get(f"{base}/admin/experiments/{path}/{action}", secret, body or {}, method="POST")


@ab_app.command("pause")
def pause(name: NameArg, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Send all traffic to the control until ``ab resume``."""
    typer.echo(f"paused {_line(_act(name, 'pause', url, key))}")


@ab_app.command("resume")
def resume(name: NameArg, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Run a paused experiment again at its weights."""
    typer.echo(f"resumed {_line(_act(name, 'resume', url, key))}")


@ab_app.command("stop")
def stop(name: NameArg, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """End the experiment without a winner: all traffic to the control, for good."""
    typer.echo(f"stopped {_line(_act(name, 'stop', url, key))}")
