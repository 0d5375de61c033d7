"""``customize provision``: Provisioned Throughput or an on-demand deployment for a custom model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from customize.aws import AwsContext
from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    finish,
    note,
    out,
    reported_errors,
    wait_and_show,
)
from customize.errors import UsageError
from customize.serving.provision import (
    ServingSnapshot,
    create_deployment,
    create_provisioned,
    get_deployment,
    get_provisioned,
    on_demand_family,
    serving_rows,
)


def provision(
    model: Annotated[str, typer.Option("--model", help="Custom (or imported) model ARN to serve.")],
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
        str | None,
        typer.Option("--commitment", help="OneMonth or SixMonths (default: no commitment)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until it can serve requests.")
    ] = True,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Serve a custom model: Provisioned Throughput (--units N) or on demand (--on-demand)."""
    with reported_errors(as_json):
        if (units is None) == (not on_demand):
            raise UsageError("pass exactly one of --units N and --on-demand")
        if commitment not in (None, "OneMonth", "SixMonths"):
            raise UsageError("--commitment must be OneMonth or SixMonths")
        aws = AwsContext(region, profile)
        fetch: Callable[[], ServingSnapshot]
        if on_demand:
            family = on_demand_family(aws.bedrock, model)
            note(f"{family.display} supports on-demand deployment", as_json=as_json)
            arn = create_deployment(aws.bedrock, model_arn=model, name=name)
            fetch = lambda: get_deployment(aws.bedrock, arn)  # noqa: E731
        else:
            assert units is not None
            arn = create_provisioned(
                aws.bedrock, model_arn=model, units=units, name=name, commitment=commitment
            )
            fetch = lambda: get_provisioned(aws.bedrock, arn)  # noqa: E731
        if not as_json:
            out().print(arn)
        state: ServingSnapshot = fetch()
        if wait and not state.done:
            state = wait_and_show(
                fetch,
                title="Serving custom model",
                rows=serving_rows,
                interval=poll_interval,
                as_json=as_json,
            )
        failure = None
        if state.status == "Failed":
            failure = f"{state.name} failed: {state.failure_message or 'no failure message given'}"
        elif state.ready and not as_json:
            out().print(f"{state.status}: invoke it with modelId {state.arn}")
        finish({"ok": True, "serving": state.as_dict()}, failure, as_json)
