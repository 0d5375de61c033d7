"""``customize provision`` (create, update, delete, list Provisioned Throughput, or an on-demand
deployment for a custom model) and ``customize deployments list|update|delete``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    Tags,
    Wait,
    Yes,
    confirm,
    emit_json,
    finish,
    make_typer,
    note,
    out,
    reported_errors,
    wait_and_show,
)
from customize.errors import UsageError
from customize.serving.provision import ServingSnapshot, serving_rows

if TYPE_CHECKING:
    from customize.aws import AwsContext

Arn = Annotated[str, typer.Argument(help="ARN (or name) of the Provisioned Throughput.")]
DeploymentArn = Annotated[str, typer.Argument(help="ARN (or name) of the deployment.")]


def _aws(region: str | None, profile: str | None) -> AwsContext:
    from customize.aws import AwsContext

    return AwsContext(region, profile)


def retarget_variants(model_arn: str, serving_arn: str, as_json: bool) -> list[str]:
    """Variants registered on the bare model ARN now route through what serves it."""
    from customize.variants.store import VariantStore

    changed = VariantStore.default().retarget(model_arn, f"bedrock:{serving_arn}")
    for name in changed:
        note(f"variant {name} now routes to bedrock:{serving_arn}", as_json=as_json)
    return changed


def _warn_routing(serving_arn: str, as_json: bool) -> list[str]:
    from customize.variants.store import VariantStore

    names = VariantStore.default().routing_to(f"bedrock:{serving_arn}")
    for name in names:
        note(
            f"variant {name} routes to bedrock:{serving_arn}; its calls will fail once it is gone "
            f"(strata variants add {name} --target … --replace)",
            as_json=as_json,
        )
    return names


def _show(key: str, items: list[ServingSnapshot], as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, key: [item.as_dict() for item in items]})
        return
    for item in items:
        units = f"  units={item.units}" if item.units is not None else ""
        out().print(f"{item.arn}  {item.status}{units}  model={item.model_arn}")


def _delete_serving(
    state: ServingSnapshot, what: str, delete: Callable[[], None], *, yes: bool, as_json: bool
) -> None:
    """Confirm, warn about variants routing to it, delete, and report: for both kinds."""
    confirm(
        [f"{state.name}: {what} serving {state.model_arn}"],
        f"Delete {state.name}?",
        yes=yes,
        as_json=as_json,
    )
    routing = _warn_routing(state.arn, as_json)
    delete()
    if not as_json:
        out().print(f"deleted {state.arn}")
    finish({"ok": True, "deleted": state.arn, "variants_affected": routing}, None, as_json)


def follow_serving(
    fetch: Callable[[], ServingSnapshot], *, wait: bool, interval: float, as_json: bool
) -> tuple[ServingSnapshot, str | None]:
    state = fetch()
    if wait and not state.done:
        state = wait_and_show(
            fetch,
            title="Serving custom model",
            rows=serving_rows,
            interval=interval,
            as_json=as_json,
        )
    failure = None
    if state.status == "Failed":
        failure = f"{state.name} failed: {state.failure_message or 'no failure message given'}"
    elif state.ready and not as_json:
        out().print(f"{state.status}: invoke it with modelId {state.arn}")
    return state, failure


provision_app = make_typer(
    "Provisioned Throughput for a custom model (or --on-demand), and managing it.",
    no_args_is_help=False,
    invoke_without_command=True,
)


@provision_app.callback(invoke_without_command=True)
def provision(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Custom model ARN to serve. Imported models need no provisioning: Bedrock "
            "runs them on demand.",
        ),
    ] = None,
    units: Annotated[
        int | None, typer.Option("--units", min=1, help="Model units of Provisioned Throughput.")
    ] = None,
    on_demand: Annotated[
        bool,
        typer.Option(
            "--on-demand",
            help="Create an on-demand custom model deployment instead (where supported).",
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Name for the throughput or deployment.")
    ] = None,
    commitment: Annotated[
        Literal["OneMonth", "SixMonths"] | None,
        typer.Option("--commitment", help="Commitment term (default: none, billed hourly)."),
    ] = None,
    tag: Tags = None,
    yes: Yes = False,
    wait: Wait = False,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Serve a custom model: Provisioned Throughput (--units N) or on demand (--on-demand)."""
    if ctx.invoked_subcommand is not None:
        return
    from customize.commands.submit_cmd import parse_tags
    from customize.costs import provisioned_estimate
    from customize.serving import provision as serving

    with reported_errors(as_json):
        if model is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        serving.refuse_imported(model)
        if (units is None) == (not on_demand):
            raise UsageError("pass exactly one of --units N and --on-demand")
        if on_demand and commitment:
            raise UsageError(
                "--commitment is for Provisioned Throughput (--units), not --on-demand"
            )
        aws = _aws(region, profile)
        tags = parse_tags(tag)
        fetch: Callable[[], ServingSnapshot]
        if on_demand:
            family = serving.on_demand_family(aws.bedrock, model)
            note(f"{family.display} supports on-demand deployment", as_json=as_json)
            arn = serving.create_deployment(aws.bedrock, model_arn=model, name=name, tags=tags)
            fetch = lambda: serving.get_deployment(aws.bedrock, arn)  # noqa: E731
        else:
            assert units is not None
            estimate = provisioned_estimate(
                serving.base_family(aws.bedrock, model), units, commitment
            )
            confirm(
                list(estimate.lines),
                f"Create {units} model unit(s) of Provisioned Throughput?",
                yes=yes,
                as_json=as_json,
            )
            arn = serving.create_provisioned(
                aws.bedrock, model_arn=model, units=units, name=name, commitment=commitment,
                tags=tags,
            )  # fmt: skip
            fetch = lambda: serving.get_provisioned(aws.bedrock, arn)  # noqa: E731
        if not as_json:
            out().print(arn)
        state, failure = follow_serving(fetch, wait=wait, interval=poll_interval, as_json=as_json)
        changed = retarget_variants(model, state.arn, as_json) if state.ready else []
        if not wait:
            note(f"follow it: strata customize provision status {arn} --wait", as_json=as_json)
        finish(
            {"ok": True, "serving": state.as_dict(), "variants_updated": changed}, failure, as_json
        )


@provision_app.command("status")
def provision_status(
    arn: Arn,
    wait: Wait = False,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Show a Provisioned Throughput or deployment; --wait until it can serve."""
    from customize.serving import provision as serving

    with reported_errors(as_json):
        aws = _aws(region, profile)
        getter = (
            serving.get_deployment
            if ":custom-model-deployment/" in arn
            else serving.get_provisioned
        )
        state, failure = follow_serving(
            lambda: getter(aws.bedrock, arn), wait=wait, interval=poll_interval, as_json=as_json
        )
        changed = retarget_variants(state.model_arn, state.arn, as_json) if state.ready else []
        if not as_json:
            out().print(f"{state.name}: {state.status} ({state.model_arn})")
        finish(
            {"ok": True, "serving": state.as_dict(), "variants_updated": changed}, failure, as_json
        )


@provision_app.command("list")
def provision_list(
    region: Region = None, profile: Profile = None, as_json: JsonOut = False
) -> None:
    """List Provisioned Throughputs (each bills per hour until deleted)."""
    from customize.serving.provision import list_provisioned

    with reported_errors(as_json):
        _show("provisioned", list_provisioned(_aws(region, profile).bedrock), as_json)


@provision_app.command("update")
def provision_update(
    arn: Arn,
    model: Annotated[
        str | None, typer.Option("--model", help="Serve this custom model instead.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    yes: Yes = False,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Change the model a Provisioned Throughput serves, or its name."""
    from customize.serving.provision import update_provisioned

    with reported_errors(as_json):
        confirm(
            [f"{arn} will switch to {model}" if model else f"{arn} will be renamed to {name}"],
            "Update this Provisioned Throughput?",
            yes=yes,
            as_json=as_json,
        )
        update_provisioned(_aws(region, profile).bedrock, arn, name=name, model_arn=model)
        if not as_json:
            out().print(f"update requested for {arn}")
        finish({"ok": True, "updated": arn, "model": model, "name": name}, None, as_json)


@provision_app.command("delete")
def provision_delete(
    arn: Arn,
    yes: Yes = False,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Delete a Provisioned Throughput: its hourly billing stops."""
    from customize.serving.provision import delete_provisioned, get_provisioned

    with reported_errors(as_json):
        aws = _aws(region, profile)
        state = get_provisioned(aws.bedrock, arn)
        _delete_serving(
            state,
            f"{state.units} unit(s) of Provisioned Throughput",
            lambda: delete_provisioned(aws.bedrock, state.arn),
            yes=yes,
            as_json=as_json,
        )


deployments_app = make_typer("On-demand custom model deployments.")


@deployments_app.command("list")
def deployments_list(
    region: Region = None, profile: Profile = None, as_json: JsonOut = False
) -> None:
    """List on-demand deployments of custom models."""
    from customize.serving.provision import list_deployments

    with reported_errors(as_json):
        _show("deployments", list_deployments(_aws(region, profile).bedrock), as_json)


@deployments_app.command("update")
def deployments_update(
    arn: DeploymentArn,
    model: Annotated[str, typer.Option("--model", help="Serve this custom model instead.")],
    yes: Yes = False,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Point an on-demand deployment at another custom model."""
    from customize.serving.provision import update_deployment

    with reported_errors(as_json):
        confirm([f"{arn} will serve {model}"], "Update this deployment?", yes=yes, as_json=as_json)
        update_deployment(_aws(region, profile).bedrock, arn, model)
        if not as_json:
            out().print(f"update requested for {arn}")
        finish({"ok": True, "updated": arn, "model": model}, None, as_json)


@deployments_app.command("delete")
def deployments_delete(
    arn: DeploymentArn,
    yes: Yes = False,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Delete an on-demand deployment."""
    from customize.serving.provision import delete_deployment, get_deployment

    with reported_errors(as_json):
        aws = _aws(region, profile)
        state = get_deployment(aws.bedrock, arn)
        _delete_serving(
            state,
            "on-demand deployment",
            lambda: delete_deployment(aws.bedrock, state.arn),
            yes=yes,
            as_json=as_json,
        )
