"""``variants add | list | show | remove``: the registry behind ``variant:NAME`` targets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    emit_json,
    note,
    out,
    reported_errors,
    wait_and_show,
)
from customize.errors import UsageError
from customize.jobs.hyperparams import parse_assignments
from customize.serving.provision import serving_rows
from customize.variants.local_run import read_run, run_lineage
from customize.variants.store import Variant, VariantStore
from customize.variants.targets import check_variant_name

if TYPE_CHECKING:
    from customize.aws import AwsContext

Name = Annotated[str, typer.Argument(help="Variant name (letters, digits, '.', '_', '-').")]


def add(
    name: Name,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="bedrock:<model id or ARN>, local:<base> or local:<base>@<adapter>."
        ),
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="A Completed customization job (ARN or name).")
    ] = None,
    import_job: Annotated[
        str | None, typer.Option("--import-job", help="A Completed model import job (ARN or name).")
    ] = None,
    base: Annotated[
        str | None, typer.Option("--base", help="Base model (recorded; with --target).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help="How it was made, e.g. lora, dpo (with --target)."),
    ] = None,
    dataset_hash: Annotated[
        str | None,
        typer.Option("--dataset-hash", help="Hash of the training data (with --target)."),
    ] = None,
    hp: Annotated[
        list[str] | None,
        typer.Option("--hp", help="Hyper-parameter name=value to record (with --target)."),
    ] = None,
    notes: Annotated[
        str | None, typer.Option("--notes", help="Free text kept with the variant.")
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            "--run",
            help="With --target: the local training run's --out folder; its report.json "
            "gives the base, method and data hash, and the lineage dataset → training run.",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite an existing variant of this name.")
    ] = False,
    deploy: Annotated[
        Literal["on-demand"] | None,
        typer.Option(
            "--deploy",
            help="With --job: create an on-demand deployment when the model has no serving yet.",
        ),
    ] = None,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Register a variant from a target, a finished fine-tuning job, or a finished import."""
    with reported_errors(as_json):
        check_variant_name(name)
        if sum(x is not None for x in (target, job, import_job)) != 1:
            raise UsageError("pass exactly one of --target, --job and --import-job")
        if run is not None and target is None:
            raise UsageError("--run goes with --target (local:<base>@<adapter>)")
        if target is not None:
            report = read_run(run) if run is not None else {}
            variant = Variant(
                name=name,
                target=target,
                base_model=base or report.get("base"),
                method=method or report.get("method"),
                dataset_hash=dataset_hash or report.get("data_sha256"),
                hyperparameters=parse_assignments(hp or []),
                notes=notes,
                lineage=run_lineage(run, report) if run is not None else {},
            )
        else:
            from customize.aws import AwsContext
            from customize.variants.lookup import (
                converse_problem,
                variant_from_import,
                variant_from_job,
            )

            aws = AwsContext(region, profile)
            if job is not None:
                variant = variant_from_job(aws.bedrock, aws.s3, name, job, notes=notes)
                if variant.model_arn and variant.target == f"bedrock:{variant.model_arn}":
                    variant = _served(aws, variant, deploy, poll_interval, as_json)
            else:
                assert import_job is not None
                variant = variant_from_import(aws.bedrock, name, import_job, notes=notes)
                assert variant.model_arn is not None
                problem = converse_problem(aws.bedrock, variant.model_arn)
                if problem:
                    note(f"warning: {problem.replace('NAME', name)}", as_json=as_json)
        store = VariantStore.default()
        store.add(variant, replace=replace)
        if as_json:
            emit_json({"ok": True, "variant": variant.as_dict(), "store": str(store.path)})
        else:
            out().print(f"variant {variant.name} → {variant.target}")


def _served(
    aws: AwsContext, variant: Variant, deploy: str | None, interval: float, as_json: bool
) -> Variant:
    """A variant whose custom model nothing serves yet: deploy it on demand, or refuse."""
    from dataclasses import replace

    from customize.serving.provision import create_deployment, get_deployment, on_demand_family

    model = variant.model_arn
    assert model is not None
    if deploy != "on-demand":
        raise UsageError(
            f"custom model {model} has no Provisioned Throughput or on-demand deployment, so "
            f"variant:{variant.name} could not be invoked; pass --deploy on-demand, or first run "
            f"`strata customize provision --model {model} --on-demand --wait` (or --units N)"
        )
    on_demand_family(aws.bedrock, model)
    arn = create_deployment(aws.bedrock, model_arn=model, name=None)
    note(f"deploying {model} on demand: {arn}", as_json=as_json)
    state = wait_and_show(
        lambda: get_deployment(aws.bedrock, arn),
        title="On-demand deployment",
        rows=serving_rows,
        interval=interval,
        as_json=as_json,
    )
    if not state.ready:
        raise UsageError(
            f"deployment {state.name} ended {state.status}: "
            f"{state.failure_message or 'no failure message given'}"
        )
    return replace(variant, target=f"bedrock:{state.arn}")


def list_variants(as_json: JsonOut = False) -> None:
    """List registered variants."""
    with reported_errors(as_json):
        variants = VariantStore.default().list()
        if as_json:
            emit_json({"ok": True, "variants": [v.as_dict() for v in variants]})
            return
        table = Table("Name", "Target", "Base model", "Method", "Created")
        for column in table.columns:
            column.overflow = "fold"  # targets are for copying: wrap them, never cut them
        for variant in variants:
            table.add_row(
                variant.name,
                variant.target,
                variant.base_model or "-",
                variant.method or "-",
                variant.created_at,
            )
        out().print(table)


def show(name: Name, as_json: JsonOut = False) -> None:
    """Show everything recorded about one variant."""
    with reported_errors(as_json):
        variant = VariantStore.default().get(name)
        if variant is None:
            raise UsageError(f"no variant named {name!r}")
        if as_json:
            emit_json({"ok": True, "variant": variant.as_dict()})
            return
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in variant.as_dict().items():
            shown = (
                ", ".join(f"{k}={v}" for k, v in value.items())
                if isinstance(value, dict)
                else value
            )
            table.add_row(key, str(shown) if shown not in (None, "") else "-")
        out().print(table)


def remove(name: Name, as_json: JsonOut = False) -> None:
    """Remove a variant from the registry."""
    with reported_errors(as_json):
        if not VariantStore.default().remove(name):
            raise UsageError(f"no variant named {name!r}")
        if as_json:
            emit_json({"ok": True, "removed": name})
        else:
            out().print(f"removed variant {name}")
